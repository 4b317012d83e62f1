"""Folds fitted side by side in threads (issue 13): the same results as one after the other,
progress from the caller's thread only, every stopped fit counted, a Stop that stops."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info

from decoding_core.config import DecodingConfig
from decoding_core.decoding import decode
from decoding_core.decoding.estimators import ESTIMATORS
from decoding_core.decoding.folds import available_cores, fold_workers, run_folds, single_blas_thread
from tests.core.decoding._helpers import make_masked

CLASSES = ("face", "cat", "house", "shoe")


@pytest.fixture(scope="module")
def masked():
    return make_masked(classes=CLASSES, n_voxels=40, n_runs=5, seed=3)


def assert_same_result(threaded, serial):
    np.testing.assert_array_equal(threaded.fold_scores, serial.fold_scores)
    np.testing.assert_array_equal(threaded.fold_weights, serial.fold_weights)
    np.testing.assert_array_equal(threaded.weights, serial.weights)
    np.testing.assert_array_equal(threaded.chosen_C, serial.chosen_C)
    pd.testing.assert_frame_equal(threaded.predictions, serial.predictions)
    pd.testing.assert_frame_equal(threaded.folds, serial.folds)
    assert threaded.not_converged == serial.not_converged


@pytest.mark.parametrize("estimator", [name for name, spec in ESTIMATORS.items() if spec.fits_in_threads])
@pytest.mark.parametrize("scoring", ["accuracy", "roc_auc"])
def test_folds_in_threads_give_the_results_of_folds_in_turn(masked, estimator, scoring):
    config = DecodingConfig(conditions=CLASSES, estimator=estimator, scoring=scoring)
    assert_same_result(decode(masked, config, workers=3), decode(masked, config, workers=1))


def test_nested_tuning_in_threads_gives_the_results_in_turn(masked):
    config = DecodingConfig(conditions=CLASSES, estimator="logistic_l2", tune_C=True)
    assert_same_result(decode(masked, config, workers=2), decode(masked, config, workers=1))


def test_liblinear_estimators_fit_their_folds_in_turn():
    # liblinear's coordinate order comes from one random state of the whole process.
    assert not ESTIMATORS["svm_l1"].fits_in_threads and not ESTIMATORS["logistic_l1"].fits_in_threads
    eight_classes = np.empty((864, 577))
    assert fold_workers(12, eight_classes, 8, fits_in_threads=False) == 1
    assert fold_workers(1, eight_classes, 8, fits_in_threads=True) == 1
    assert fold_workers(12, eight_classes, 8, fits_in_threads=True) == min(available_cores(), 4)


def test_small_fits_and_huge_matrices_are_fitted_one_fold_at_a_time():
    assert fold_workers(12, np.empty((216, 577)), 1, fits_in_threads=True) == 1  # threads slow it down
    huge = np.lib.stride_tricks.as_strided(np.empty(1), shape=(1452, 40_000), strides=(0, 0))
    assert huge.nbytes > 400 * 1024**2
    assert fold_workers(12, huge, 1, fits_in_threads=True) == 1  # one copy of the matrix at a time


def test_progress_comes_from_the_callers_thread_and_says_every_fold(masked):
    caller = threading.get_ident()
    calls = []
    decode(masked, DecodingConfig(conditions=CLASSES, estimator="svc"), workers=3,
           progress=lambda fraction, message: calls.append((fraction, message, threading.get_ident())))
    assert {thread for _, _, thread in calls} == {caller}
    fractions = [fraction for fraction, _, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    done = [message for _, message, _ in calls if message.endswith(" done") and message.startswith("Fold")]
    assert sorted(done) == [f"Fold {k} of 5 done" for k in range(1, 6)]
    # Within a fold: the one-vs-rest classes, with the fold's name.
    assert any(message.startswith("Fold ") and "one-vs-rest: " in message for _, message, _ in calls)


def test_fits_stopped_by_the_cap_are_counted_in_threads(masked, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    spec = ESTIMATORS["logistic_l2"]
    capped = lambda C: LogisticRegression(C=C, tol=1e-12, max_iter=1)  # noqa: E731
    monkeypatch.setitem(ESTIMATORS, "logistic_l2", type(spec)(spec.name, spec.title, spec.help, capped,
                                                               spec.source))
    config = DecodingConfig(conditions=CLASSES, estimator="logistic_l2")
    threaded = decode(masked, config, workers=3)
    assert threaded.not_converged == 5 + 1  # every fold and the refit
    assert threaded.not_converged == decode(masked, config, workers=1).not_converged


class Stop(Exception):
    pass


def test_a_stop_raised_by_progress_starts_no_further_fold():
    started = []

    def task(fold):
        def run(progress):
            started.append(fold)
            threading.Event().wait(0.05)
            return fold
        return run

    def progress(fraction, message):
        if message == "Fold 1 of 20 done":
            raise Stop

    with pytest.raises(Stop):
        run_folds([task(fold) for fold in range(20)], progress, workers=2)
    assert len(started) < 20


def test_outcomes_keep_the_order_of_the_folds():
    def task(fold):
        def run(progress):
            threading.Event().wait(0.01 * (5 - fold))  # the first folds end last
            progress(1.0, "fitted")
            return fold
        return run

    assert run_folds([task(fold) for fold in range(5)], lambda f, m: None, workers=3) == list(range(5))
    assert run_folds([task(fold) for fold in range(5)], lambda f, m: None, workers=1) == list(range(5))


def test_blas_runs_on_one_thread_within_the_context():
    with single_blas_thread():
        assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")


def test_liblinear_fits_in_threads_give_the_results_they_give_alone(masked):
    # liblinear reseeds one process-wide random state per fit and draws its coordinate
    # order from it: fits at once (two sessions of the app) must take turns.
    from sklearn.base import clone

    from decoding_core.decoding import make_classifier
    from decoding_core.decoding.estimators import coefficients, fit_classifier

    X, y = np.asarray(masked.X, dtype=np.float64), np.asarray(masked.labels).astype(str)
    templates = [make_classifier("svm_l1", 1.0), make_classifier("logistic_l1", 1.0)]
    alone = [coefficients(fit_classifier(clone(t), X, y)) for t in templates]
    together = [None] * 4

    def fit(slot):
        together[slot] = coefficients(fit_classifier(clone(templates[slot % 2]), X, y))

    threads = [threading.Thread(target=fit, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for slot in range(4):
        np.testing.assert_array_equal(together[slot], alone[slot % 2])
