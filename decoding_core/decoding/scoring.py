"""The scores offered, in one table, and how a fold is scored.

`SCORINGS` is the only description of a score: its name (the key used by the
configuration, the command line, links and exports), its title and help.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from decoding_core.choices import Choice
from decoding_core.decoding.estimators import label_score


@dataclass(frozen=True)
class Scoring(Choice):
    """One offered score (a `Choice`; its help says what guessing scores).

    Attributes
    ----------
    short : str
        The score's name inside a sentence or an axis label ("mean ROC AUC").
    """

    short: str


#: Every offered score by name.
SCORINGS = {
    scoring.name: scoring
    for scoring in (
        Scoring("accuracy", "Accuracy",
                "Fraction of test samples classified correctly; guessing scores the majority-class rate.",
                "accuracy"),
        Scoring("balanced_accuracy", "Balanced accuracy",
                "Mean recall over the conditions; guessing scores 1 / number of conditions.",
                "balanced accuracy"),
        Scoring("roc_auc", "ROC AUC (one-vs-rest when more than two classes)",
                "Area under the ROC curve of the decision values; guessing scores 0.5. For more than "
                "two classes, the one-vs-rest AUC of each class macro-averaged, as scikit-learn's "
                "roc_auc_score(multi_class='ovr'), from the class probabilities when the estimator "
                "gives them, else from its one-vs-rest decision values; linear SVC is one-vs-one, so "
                "its scores come from a one-vs-rest linear SVC with the same C fitted on the same "
                "training fold (its labels and accuracy stay one-vs-one).",
                "ROC AUC"),
    )
}


def class_scores(model, X, classes: np.ndarray):
    """Continuous outputs of a fitted model on ``X``, laid out by ``classes``.

    Returns ``(decision, proba)``: for two classes ``decision`` is a vector (score
    toward ``classes[1]``); otherwise an (n, n_classes) matrix with -inf for a
    class the model never saw. ``proba`` is None without ``predict_proba``.
    """
    fitted = np.asarray(model.classes_).astype(str)
    columns = np.searchsorted(classes, fitted)
    decision = proba = None
    if hasattr(model, "decision_function"):
        raw = np.asarray(model.decision_function(X), dtype=float)
        if len(classes) == 2:
            decision = raw if raw.ndim == 1 else raw[:, -1]
        else:
            decision = np.full((len(X), len(classes)), -np.inf)
            if raw.ndim == 1:  # a fold that trained on two classes only
                decision[:, columns[1]], decision[:, columns[0]] = raw, -raw
            else:
                decision[:, columns] = raw
    if hasattr(model, "predict_proba"):
        raw = np.asarray(model.predict_proba(X), dtype=float)
        proba = np.zeros((len(X), len(classes)))
        proba[:, columns] = raw
    return decision, proba


def fold_score(scoring: str, y_true, y_pred, decision, proba, classes) -> float:
    """One fold's score; NaN for ROC AUC when the fold holds a single condition."""
    if scoring in ("accuracy", "balanced_accuracy"):
        return label_score(scoring, y_true, y_pred)
    scores = proba if (proba is not None and len(classes) > 2) else decision
    if scores is None:
        scores = proba[:, 1] if len(classes) == 2 else proba
    if len(classes) == 2:
        positive = y_true == classes[1]
        if positive.all() or not positive.any():
            return float("nan")
        return float(roc_auc_score(positive, scores))
    # One-vs-rest, macro-averaged over the classes with positives and negatives here;
    # equals roc_auc_score(multi_class="ovr") when every class is present.
    aucs = []
    for k, name in enumerate(classes):
        positive = y_true == name
        if positive.any() and not positive.all() and np.isfinite(scores[:, k]).all():
            aucs.append(roc_auc_score(positive, scores[:, k]))
    return float(np.mean(aucs)) if aucs else float("nan")


def chance_level(scoring: str, class_counts) -> float:
    """The score of guessing under ``scoring``, given the number of samples of each class.

    Accuracy: the majority-class rate (a classifier that always answers the most
    frequent class gets it). Balanced accuracy: 1 / n_classes. ROC AUC: 0.5.
    """
    counts = np.asarray(class_counts, dtype=float)
    if scoring == "balanced_accuracy":
        return 1.0 / counts.size
    if scoring == "roc_auc":
        return 0.5
    return float(counts.max() / counts.sum())
