"""Tests of decoding_core.progress: shared bars and the time elapsed and left."""

from __future__ import annotations

from decoding_core.progress import format_duration, share, timed


def test_timed_adds_the_time_elapsed_and_an_estimate_of_the_time_left():
    now = [100.0]
    seen = []
    progress = timed(lambda fraction, message: seen.append((fraction, message)), clock=lambda: now[0])
    now[0] = 101.0
    progress(0.5, "Fold 1 of 2")  # 1 s in: too early for an estimate
    now[0] = 104.0
    progress(0.01, "Fold 1 of 2: one-vs-rest")  # 1 % done: too little for an estimate
    progress(0.2, "Fold 1 of 2 done")
    now[0] = 224.0
    progress(1.0, "Decoding done")
    progress(0.0, "")
    assert seen == [
        (0.5, "Fold 1 of 2 (1 s elapsed)"),
        (0.01, "Fold 1 of 2: one-vs-rest (4 s elapsed)"),
        (0.2, "Fold 1 of 2 done (4 s elapsed, about 16 s left)"),
        (1.0, "Decoding done (2 min 04 s elapsed)"),
        (0.0, "2 min 04 s elapsed"),
    ]


def test_timed_after_share_follows_the_whole_bar():
    now = [0.0]
    seen = []
    whole = timed(lambda fraction, message: seen.append(message), clock=lambda: now[0])
    now[0] = 30.0
    share(whole, 0.5, 1.0, "Decoding: ")(0.5, "Fold 6 of 12 done")  # 75 % of the whole
    assert seen == ["Decoding: Fold 6 of 12 done (30 s elapsed, about 10 s left)"]
    assert timed(None) is None


def test_no_estimate_from_nothing_done_whatever_the_thresholds(monkeypatch):
    from decoding_core import progress as core_progress

    monkeypatch.setattr(core_progress, "ESTIMATE_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(core_progress, "ESTIMATE_AFTER_FRACTION", 0.0)
    seen = []
    timed(lambda fraction, message: seen.append(message), clock=lambda: 5.0)(0.0, "Starting")
    assert seen == ["Starting (0 s elapsed)"]


def test_durations_read_as_a_person_says_them():
    assert [format_duration(s) for s in (0, 59.4, 60, 3599, 7260, -3)] == [
        "0 s", "59 s", "1 min 00 s", "59 min 59 s", "2 h 01 min", "0 s"]


def test_a_continued_run_is_timed_on_its_new_work_only():
    # Before: a permutation test continued at 60 % estimated 10 s * 0.3 / 0.7 = 4 s left.
    now = [0.0]
    seen = []
    progress = timed(lambda fraction, message: seen.append(message), clock=lambda: now[0], done_before=0.6)
    now[0] = 10.0
    progress(0.7, "Permutation 700 of 1000")
    assert seen == ["Permutation 700 of 1000 (10 s elapsed, about 30 s left)"]


def test_no_estimate_before_new_work_whatever_the_thresholds(monkeypatch):
    from decoding_core import progress as core_progress

    monkeypatch.setattr(core_progress, "ESTIMATE_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(core_progress, "ESTIMATE_AFTER_FRACTION", 0.0)
    seen = []
    timed(lambda fraction, message: seen.append(message), clock=lambda: 5.0, done_before=0.4)(0.4, "Resumed")
    assert seen == ["Resumed (0 s elapsed)"]
