"""Reading the files a data set is made of, safely and within bounds.

Modules
-------
nifti
    NIfTI images (.nii, .nii.gz): header checks before any voxel is read,
    bounded reads, streaming of 4D images chunk by chunk, file digests.
labels
    Labels tables (.csv, .tsv, .txt): bounded reading, delimiter and
    column detection.

Nothing is imported here, so ``import decoding_core.io.nifti`` does not load
pandas and ``decoding_core.io.labels`` does not load nibabel.
"""
