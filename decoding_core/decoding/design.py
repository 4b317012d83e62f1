"""Warnings about leakage and design problems of a decoding run, in words that say what to do."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from decoding_core._validation import as_labels, as_runs
from decoding_core.decoding.splits import CV_SCHEMES

if TYPE_CHECKING:
    from decoding_core.config import DecodingConfig


def _is_block_design(labels: np.ndarray) -> bool:
    """Whether conditions come in blocks of consecutive volumes (mean block length >= 2)."""
    if len(labels) < 2:
        return False
    n_blocks = 1 + int(np.count_nonzero(labels[1:] != labels[:-1]))
    return len(labels) / n_blocks >= 2.0


def _scheme_messages(scheme: str, labels: np.ndarray, runs, splits) -> list:
    """What the evaluation scheme itself gets wrong: scoring the training data, or test folds
    that share runs (or blocks) with the training data."""
    messages = []
    if scheme == "train":
        messages.append(
            "Training accuracy is meaningless: the classifier is scored on the very samples it was "
            "fitted on, and with more voxels than samples a linear classifier can fit any labelling. "
            "Use leave-one-run-out to measure how well it generalises."
        )
    elif scheme != "leave-one-run-out" and _is_block_design(labels):
        name = CV_SCHEMES[scheme].phrase
        if runs is not None and len(np.unique(runs)) >= 2:
            shared = [
                fold + 1 for fold, (train, test) in enumerate(splits)
                if np.intersect1d(runs[train], runs[test]).size
            ]
            if shared:
                messages.append(
                    f"The {name} split puts volumes of the same run on both sides of the split "
                    f"(fold(s) {fold_list(shared)}). In this block design neighbouring volumes are "
                    "correlated, so those test folds are not independent of the training data and the "
                    "score is not an honest estimate: it may be optimistic or, with slow drifts within "
                    "runs, pessimistic. Leave-one-run-out is the honest scheme."
                )
        else:
            messages.append(
                f"The conditions come in blocks of consecutive volumes and the {name} split cuts "
                "through them: neighbouring volumes are correlated, so the test samples are not "
                "independent of the training data and the score is not an honest estimate (it may be "
                "optimistic or, with slow drifts, pessimistic). With a run (chunk) column, "
                "leave-one-run-out would be the honest scheme."
            )
    return messages


def design_warnings(config: DecodingConfig, labels, runs, splits) -> list:
    """Warnings about leakage and design problems of a decoding run.

    Parameters
    ----------
    config : DecodingConfig
    labels : array-like of shape (n_samples,)
        Condition of each selected sample.
    runs : array-like of shape (n_samples,) or None
    splits : list of (train, test) index arrays
        As from `make_splits`.

    Returns
    -------
    list of str
        One sentence or two per problem, saying what to do; empty when none.
    """
    labels = as_labels(labels)
    runs = as_runs(runs, len(labels))
    messages = _scheme_messages(config.cv, labels, runs, splits)
    classes, counts = np.unique(labels, return_counts=True)
    if config.scoring == "accuracy" and len(counts) and counts.max() / counts.min() > 1.5:
        summary = ", ".join(f"{str(c)!r}: {n}" for c, n in zip(classes, counts))
        messages.append(
            f"The conditions are imbalanced ({summary}): plain accuracy rewards always guessing the "
            f"most frequent one (chance level {counts.max() / counts.sum():.0%}). "
            "Use balanced accuracy."
        )
    thin = []
    for fold, (train, _test) in enumerate(splits):
        train_classes, train_counts = np.unique(labels[train], return_counts=True)
        missing = set(classes) - set(train_classes)
        few = [str(c) for c, n in zip(train_classes, train_counts) if n < 2] + sorted(map(str, missing))
        if few:
            thin.append((fold + 1, few))
    if thin:
        details = "; ".join(f"fold {fold}: {', '.join(map(repr, few))}" for fold, few in thin[:5])
        more = f" (and {len(thin) - 5} more folds)" if len(thin) > 5 else ""
        messages.append(
            f"Some training folds have fewer than two samples of a condition ({details}{more}): the "
            "classifier can hardly learn it. Use fewer folds, a smaller hold-out, or more data."
        )
    if config.scoring == "roc_auc":
        lacking = [
            fold + 1 for fold, (_train, test) in enumerate(splits)
            if len(np.unique(labels[test])) < len(classes)
        ]
        if lacking:
            messages.append(
                f"Test fold(s) {fold_list(lacking)} miss some condition: ROC AUC there is averaged over "
                "the conditions present only, and undefined when one condition remains. Use a scheme "
                "whose test folds hold every condition (e.g. leave-one-run-out), or accuracy."
            )
    return messages


def fold_list(folds: list) -> str:
    text = ", ".join(str(f) for f in folds[:10])
    return text + (f" and {len(folds) - 10} more" if len(folds) > 10 else "")
