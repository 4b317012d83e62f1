"""The evaluation schemes offered, in one table, and the splits they make.

`CV_SCHEMES` is the only description of a scheme: its name (the key used by the
configuration, the command line, links and exports), its title, the words warnings
use for it, a help text, the function that splits the selected samples (with the
checks that make its error messages say what to do) and the same split as Python
source for the exported script.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.model_selection import KFold, LeaveOneGroupOut, StratifiedKFold

from decoding_core._validation import as_labels, as_runs
from decoding_core.choices import Choice
from decoding_core.errors import DecodingInputError

if TYPE_CHECKING:  # the configuration imports this table to check itself
    from decoding_core.config import DecodingConfig


@dataclass(frozen=True)
class Scheme(Choice):
    """One offered evaluation scheme: a `Choice` with its split.

    Attributes
    ----------
    phrase : str
        The scheme inside a sentence ("the {phrase} split ...").
    split : callable
        ``split(config, labels, runs, classes, counts)`` -> list of (train, test)
        index arrays; raises `DecodingInputError` when the scheme cannot be used.
    source : str
        The same split as a Python expression over ``indices``, ``labels``, ``runs``
        and ``config`` (a dict), for the exported script.
    """

    phrase: str
    split: Callable
    source: str


def _split_train(config, labels, runs, classes, counts):
    indices = np.arange(len(labels))
    return [(indices, indices.copy())]


def _split_holdout(config, labels, runs, classes, counts):
    n_samples, size = len(labels), config.holdout_size
    if size >= n_samples:
        raise DecodingInputError(
            f"The hold-out set ({size} samples) must be smaller than the {n_samples} selected "
            f"samples. Choose a hold-out size below {n_samples} (e.g. {max(1, n_samples // 5)})."
        )
    indices = np.arange(n_samples)
    train, test = indices[: n_samples - size], indices[n_samples - size :]
    if len(np.unique(labels[train])) < 2:
        raise DecodingInputError(
            f"Holding out the last {size} samples leaves a single condition "
            f"({str(labels[train][0])!r}) to train on. Choose a smaller hold-out size, or another scheme."
        )
    return [(train, test)]


def _split_kfold(config, labels, runs, classes, counts):
    k, n_samples = config.n_folds, len(labels)
    if k > n_samples:
        raise DecodingInputError(
            f"K-fold with K={k} needs at least {k} samples; the selection has {n_samples}. "
            f"Choose K of at most {n_samples}."
        )
    return list(KFold(n_splits=k).split(np.arange(n_samples)))


def _split_default(config, labels, runs, classes, counts):
    # What cross_val_score(classifier, X, y) does: StratifiedKFold(5), unshuffled.
    if counts.min() < 5:
        rare = ", ".join(f"{str(c)!r} ({n})" for c, n in zip(classes, counts) if n < 5)
        raise DecodingInputError(
            "scikit-learn's default split (stratified 5-fold) needs at least 5 samples of each "
            f"condition; these have fewer: {rare}. Choose K-fold with fewer folds, or hold-out."
        )
    return list(StratifiedKFold(n_splits=5).split(np.arange(len(labels)), labels))


def _split_leave_one_run_out(config, labels, runs, classes, counts):
    n_runs = 0 if runs is None else len(np.unique(runs))
    if n_runs < 2:
        described = "no runs" if runs is None else f"{n_runs} run"
        raise DecodingInputError(
            "Leave-one-run-out needs at least two runs; the selected data have "
            f"{described}. Choose K-fold or hold-out, or give a run (chunk) column for the volumes."
        )
    return list(LeaveOneGroupOut().split(np.arange(len(labels)), labels, runs))


#: Every offered scheme by name, in the order nilearn's decoding tutorial shows them.
CV_SCHEMES = {
    scheme.name: scheme
    for scheme in (
        Scheme("train", "Accuracy on the training data (meaningless)",
               "Fits and scores on the same samples: always near 1.0, so it says nothing "
               "(the tutorial shows why).", "training-data",
               _split_train, "[(indices, indices.copy())]"),
        Scheme("holdout", "Hold out the last N samples",
               "Trains on all but the last N samples and tests on those N.", "hold-out",
               _split_holdout,
               "[(indices[: len(indices) - config['holdout_size']], "
               "indices[len(indices) - config['holdout_size']:])]"),
        Scheme("kfold", "K-fold (unshuffled)",
               "Splits the samples, in order, into K parts; each part is tested once.", "unshuffled K-fold",
               _split_kfold, "list(KFold(n_splits=config['n_folds']).split(indices))"),
        Scheme("default", "scikit-learn's default split (cross_val_score)",
               "What cross_val_score does by default: 5 stratified folds, unshuffled.",
               "default (stratified 5-fold)",
               _split_default, "list(StratifiedKFold(n_splits=5).split(indices, labels))"),
        Scheme("leave-one-run-out", "Leave one run out",
               "Tests on each run in turn, training on the others: no sample of the test run is "
               "seen in training.", "leave-one-run-out",
               _split_leave_one_run_out, "list(LeaveOneGroupOut().split(indices, labels, runs))"),
    )
}


def _check_training_classes(splits, labels, scheme: str) -> None:
    for fold, (train, _test) in enumerate(splits):
        present = np.unique(labels[train])
        if len(present) < 2:
            raise DecodingInputError(
                f"Fold {fold + 1} of the {scheme} scheme trains on a single class ({str(present[0])!r}): "
                "a classifier needs at least two. The samples are probably ordered by condition; "
                "choose leave-one-run-out or fewer folds."
            )


def make_splits(config: DecodingConfig, labels, runs=None) -> list:
    """The (train, test) index pairs of ``config.cv`` on the selected samples.

    Parameters
    ----------
    config : DecodingConfig
        ``cv``, ``n_folds`` and ``holdout_size`` are read.
    labels : array-like of shape (n_samples,)
        Condition of each selected sample.
    runs : array-like of shape (n_samples,) or None
        Run of each selected sample.

    Returns
    -------
    list of (ndarray, ndarray)
        Integer indices: ``train`` (sorted) and ``test`` for each fold. For
        ``"train"`` one pair whose two halves are both every sample.

    Raises
    ------
    DecodingInputError
        When the scheme cannot be used on these samples.
    """
    labels = as_labels(labels)
    runs = as_runs(runs, len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise DecodingInputError(
            f"Only one condition ({str(classes[0]) if len(classes) else 'none'!r}) is present in the "
            "selected samples: select at least two conditions to decode."
        )
    if config.cv not in CV_SCHEMES:  # config validates cv; keep a clear message for hand-built objects
        raise DecodingInputError(f"Unknown evaluation scheme {config.cv!r}.")
    splits = CV_SCHEMES[config.cv].split(config, labels, runs, classes, counts)
    _check_training_classes(splits, labels, config.cv)
    return [(np.asarray(train, dtype=np.intp), np.asarray(test, dtype=np.intp)) for train, test in splits]
