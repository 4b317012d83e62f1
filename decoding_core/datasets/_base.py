"""`Dataset`: what every loader returns, and the names masks and categories go by."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from decoding_core.datasets.simulated import SimulatedGroundTruth

#: Human-readable titles of the mask names data sets use.
MASK_TITLES = {
    "vt": "Ventral temporal cortex",
    "face": "Face-selective region",
    "house": "House-selective region",
    "face_little": "Face-selective region (small)",
    "house_little": "House-selective region (small)",
    "brain": "Whole brain",
    "uploaded": "Uploaded mask",
    "epi": "Brain mask computed from the data (EPI mask)",
}

#: The 8 categories of Haxby et al. (2001), in the order the papers list them.
HAXBY_CATEGORIES = (
    "face", "house", "cat", "bottle", "scissors", "shoe", "chair", "scrambledpix",
)


@dataclass(frozen=True, eq=False)
class Dataset:
    """One fMRI data set ready for decoding.

    Attributes
    ----------
    name : str
        Short identifier: ``"upload"`` for the user's files; for a built-in
        data set the text of its `DatasetSpec` (``"simulated"``, ``"haxby:2"``).
    title : str
        Human-readable name.
    func_path : pathlib.Path
        The 4D functional image on disk (.nii or .nii.gz); read by streaming.
    labels : pandas.DataFrame
        One row per volume, holding at least ``label_column`` and, if any,
        ``run_column``.
    label_column : str
        Column of ``labels`` with the condition of each volume.
    run_column : str or None
        Column of ``labels`` with the run (session, chunk) of each volume.
    tr : float or None
        Repetition time in seconds.
    masks : dict of str to nibabel.Nifti1Image
        Named 3D masks on the functional grid (keys as in `MASK_TITLES`).
    anat_img : nibabel.Nifti1Image or None
        Anatomical background, resampled onto the functional grid. It may be
        computed on first read of its voxels (the mean image of the user's
        files: a whole pass over the 4D file that only a drawing needs); see
        `read_background`.
    description : str
        A short description, saying where the data come from.
    source : str
        Citation or origin (and for the simulated set: that it is simulated).
    digest : str
        Content digest of the data (function file, labels, masks): the cache key.
    shape : tuple of int
        Shape of the 4D image (x, y, z, t).
    affine : ndarray of shape (4, 4)
    ground_truth : SimulatedGroundTruth or None
        Only for the simulated data set.
    label_renames : dict of str to str
        Condition names of the labels table that the data set renames (spellings merged
        at the user's request, see `decoding_core.io.labels.merge_label_variants`).
    run_files : tuple of pathlib.Path
        The source bold file of each run, in run order, when the runs came as one file
        each (a BIDS data set); empty otherwise. fMRIPrep confounds are read next to them.
    events : pandas.DataFrame or None
        The events the labels were made from (a BIDS data set): ``onset``, ``duration``,
        ``trial_type`` (seconds from the start of each run) and ``run`` (as in the labels'
        run column); None when the labels came as a per-volume table.
    """

    name: str
    title: str
    func_path: Path
    labels: pd.DataFrame
    label_column: str
    run_column: str | None
    tr: float | None
    masks: dict
    anat_img: nib.Nifti1Image | None
    description: str
    source: str
    digest: str
    shape: tuple
    affine: np.ndarray
    ground_truth: SimulatedGroundTruth | None = None
    label_renames: dict = field(default_factory=dict)
    run_files: tuple = ()
    events: pd.DataFrame | None = None

    @property
    def func_img(self) -> nib.Nifti1Image:
        """The 4D image as a lazy nibabel proxy (data not read until asked)."""
        return nib.load(str(self.func_path))

    def read_background(self) -> nib.Nifti1Image | None:
        """``anat_img`` with its voxels read now, computing them if they are computed on first read.

        The app calls it while loading, inside the loading job, so that a
        background computed from the 4D file costs its pass there (and a file
        broken past its header is refused there) rather than at the first drawing.

        Returns
        -------
        nibabel.Nifti1Image or None
            ``anat_img`` itself.
        """
        if self.anat_img is not None:
            np.asanyarray(self.anat_img.dataobj)
        return self.anat_img

    @property
    def n_volumes(self) -> int:
        return int(self.shape[3])

    @property
    def voxel_size(self) -> tuple:
        """Voxel size in millimetres, from the affine."""
        return tuple(float(v) for v in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))

    @property
    def conditions(self) -> np.ndarray:
        """The label of each volume as a plain numpy str array."""
        return self.labels[self.label_column].to_numpy(dtype=str)

    @property
    def runs(self) -> np.ndarray | None:
        """The run of each volume, or None when the data set has no runs."""
        if self.run_column is None:
            return None
        return self.labels[self.run_column].to_numpy()

    @property
    def n_runs(self) -> int:
        runs = self.runs
        return 0 if runs is None else int(len(np.unique(runs)))
