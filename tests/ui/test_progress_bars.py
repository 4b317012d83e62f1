"""The app's progress bars: continued runs are timed on their new work; a group on the cluster
moves the bar over all its subjects."""

from __future__ import annotations

from decoding_core import progress as core_progress
from decoding_core.config import DecodingConfig
from ui import feedback
from ui import group as ui_group


class RecordingBar:
    """Stands for ``st.progress``'s element: records what the bar is given."""

    def __init__(self):
        self.updates = []

    def progress(self, fraction, text=None):
        self.updates.append((fraction, text))


def test_a_bar_continued_half_way_estimates_from_this_runs_pace(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(core_progress, "_now", lambda: now[0])
    bar = RecordingBar()
    progress = feedback.progress_bar_callback(bar, done_before=0.5)
    now[0] = 20.0
    progress(0.75, "Permutation 750 of 1000")
    assert bar.updates == [(0.75, "Permutation 750 of 1000 (20 s elapsed, about 20 s left)")]


def test_a_group_continued_on_the_cluster_moves_the_bar_over_all_subjects(monkeypatch):
    seen = []

    def decode_on_cluster(subjects, config, scheduler, progress):
        progress(0.5, "half of the remaining subjects")
        return ["result"] * len(subjects), None

    monkeypatch.setattr(ui_group.group, "decode_on_cluster", decode_on_cluster)
    monkeypatch.setattr(ui_group, "run_heavy", lambda compute: compute())
    run = ui_group.GroupRun(specs=("simulated:0", "simulated:1", "simulated:2", "simulated:3"),
                            config=DecodingConfig(), scheduler="tcp://127.0.0.1:1", results=["done"] * 2)
    monkeypatch.setattr(ui_group.GroupRun, "_settle", lambda self: None)
    ui_group.continue_group(run, progress=lambda fraction, message: seen.append(fraction))
    assert seen == [0.75]  # 2 of 4 done before, then half of the other 2
    assert len(run.results) == 4 and not run.running
