"""Decoding: a masked data set and a configuration into fold scores, predictions and weights."""

from __future__ import annotations

from dataclasses import dataclass, field

import nibabel as nib
import numpy as np
import pandas as pd

from decoding_core.config import DecodingConfig
from decoding_core.errors import DecodingInputError
from decoding_core.masking import MaskedData, ProgressCallback


@dataclass(frozen=True, eq=False)
class DecodingResult:
    """The outcome of one decoding run.

    Attributes
    ----------
    config : DecodingConfig
    fold_scores : ndarray of shape (n_folds,)
        Score of each fold under ``config.scoring`` (one value for ``train`` and ``holdout``).
    mean_score, std_score : float
    chance_level : float
        Majority-class rate of the selected samples.
    meaningless : bool
        True when the scheme scores the training data itself (``cv="train"``).
    predictions : pandas.DataFrame
        One row per (sample, fold in which it was tested): columns ``sample``
        (row in the selected data), ``volume`` (index in the 4D image), ``run``,
        ``fold``, ``true``, ``predicted``, ``correct``.
    classes : tuple of str
    weights : ndarray of shape (n_maps, n_voxels)
        Weights of the classifier refitted on all selected samples, as in the
        tutorial: one row for two classes, one per class (one-vs-rest) otherwise.
    weight_img : nibabel.Nifti1Image
        ``weights`` back in the brain (3D for one map, 4D for several).
    n_samples, n_voxels : int
    warnings : list of str
        Design and leakage warnings about this run.
    elapsed_seconds : float
    extras : dict
        Further results (per-fold weights, chosen C per fold, metrics, ...).
    """

    config: DecodingConfig
    fold_scores: np.ndarray
    mean_score: float
    std_score: float
    chance_level: float
    meaningless: bool
    predictions: pd.DataFrame
    classes: tuple
    weights: np.ndarray
    weight_img: nib.Nifti1Image
    n_samples: int
    n_voxels: int
    warnings: list = field(default_factory=list)
    elapsed_seconds: float = 0.0
    extras: dict = field(default_factory=dict)


def decode(masked: MaskedData, config: DecodingConfig,
           progress: ProgressCallback | None = None) -> DecodingResult:
    """Select ``config.conditions`` from ``masked`` and decode them under ``config``."""
    raise NotImplementedError


def run_decoding(dataset, config: DecodingConfig,
                 progress: ProgressCallback | None = None) -> DecodingResult:
    """The whole pipeline: mask ``dataset`` as ``config`` says, then `decode`."""
    raise NotImplementedError
