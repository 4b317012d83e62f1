"""Long runs that go on across script runs: permutation tests and sweeps, as dataclasses.

A permutation test or a sweep takes longer than one script run may last: the
user can press Stop (which interrupts the script), move to another page, or come
back. Each is therefore a record in the session state (`PermutationRun`,
`SweepRun`) that a driver advances step by step (`continue_permutations`,
`continue_sweep`), keeping every step finished before a Stop. The records change
only through their own methods, so what "stopped", "done" and "running" mean is
written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from decoding_core import significance, sweeps
from decoding_core.config import DecodingConfig, format_value
from decoding_core.errors import DecodingInputError
from decoding_core.plotting import plot_null_distribution, plot_score_vs_setting
from ui import analysis
from ui.feedback import ProgressCallback, run_heavy
from ui.history import record_run

#: Most permutations run per call of the core (one slot of the job gate): other users' jobs can
#: start between chunks. A Stop keeps every finished permutation, whatever the chunk.
PERMUTATION_CHUNK = 200


# -- permutation tests -----------------------------------------------------------------------------
@dataclass
class PermutationRun:
    """A permutation test run chunk by chunk, each permutation kept as it finishes (`continue_permutations`).

    The chunks continue one stream of permutations (the seed's, see
    `decoding_core.significance.permutation_test`'s ``first``), so the null scores are
    those of one call of the core, or of scikit-learn's ``permutation_test_score`` with
    ``random_state=seed``, however the run was cut into chunks.

    Attributes
    ----------
    key : tuple
        The result it tests (`ui.analysis.result_key`): a run for another result is dropped.
    n_target : int
        Permutations asked for.
    null_scores : list of float
        Scores with shuffled labels, in the order they were computed.
    observed : float or None
        The score with the true labels (known after the first chunk).
    scoring : str
        The score's name.
    running : bool
        Whether chunks remain to be run.
    stopped_early : bool
        Whether it ended before `n_target` (Stop pressed, or the core stopped).
    seed : int
        Seed of the shuffling.
    """

    key: tuple
    n_target: int
    null_scores: list = field(default_factory=list)
    observed: float | None = None
    scoring: str = "accuracy"
    running: bool = True
    stopped_early: bool = False
    seed: int = 0

    @property
    def n_done(self) -> int:
        """Permutations done so far."""
        return len(self.null_scores)

    @property
    def p_value(self) -> float:
        """(1 + permuted scores >= observed) / (1 + permutations), as scikit-learn's (never 0)."""
        return significance.empirical_p_value(float(self.observed), np.asarray(self.null_scores, dtype=float))

    def add_scores(self, observed: float, null_scores, scoring: str) -> None:
        """Add the scores of finished permutations; the run ends when `n_target` are done."""
        self.observed = float(observed)
        self.scoring = scoring
        self.null_scores.extend(float(v) for v in null_scores[: max(self.n_target - self.n_done, 0)])
        self.settle()

    def settle(self) -> None:
        """Mark the run finished once every permutation asked for is done."""
        if self.n_done >= self.n_target:
            self.running = False

    def stop(self) -> None:
        """The user pressed Stop: keep the permutations done so far."""
        self.running = False
        self.stopped_early = self.n_done < self.n_target

    def interrupt(self) -> None:
        """The core stopped before the chunk's end (a Stop seen inside it)."""
        self.running = False
        self.stopped_early = True

    def fail(self) -> None:
        """A chunk raised: nothing more runs (the error is shown by the page)."""
        self.running = False


def continue_permutations(run: PermutationRun, dataset, config: DecodingConfig, *,
                          progress: ProgressCallback | None = None, should_stop=None) -> None:
    """Run the remaining permutations of ``run``, adding each to ``run`` as soon as it finishes.

    A Stop interrupts the script run inside the core: every permutation finished
    before it is already in ``run``. The chunks continue one stream of permutations
    (``first`` = the permutations done), so the null scores do not depend on the
    chunks. Each chunk takes its own slot of the job gate, so other users' jobs can
    start between chunks.
    """
    selected = analysis.selected_masked(dataset, config)
    while run.running and run.n_done < run.n_target:
        if should_stop is not None and should_stop():
            run.interrupt()
            break
        chunk = min(PERMUTATION_CHUNK, run.n_target - run.n_done)
        done_before, target = run.n_done, run.n_target

        def chunk_progress(fraction, message="", done_before=done_before, chunk=chunk):
            if progress is not None:
                done = done_before + float(fraction) * chunk
                progress(done / target, f"Permutation {int(done)} of {target}")

        def keep(observed, scores):
            run.add_scores(observed, scores, config.scoring)

        outcome = run_heavy(lambda: significance.permutation_test(
            selected, config, n_permutations=chunk, seed=run.seed, first=done_before,
            progress=chunk_progress, should_stop=should_stop, on_null_scores=keep,
        ))
        if run.observed is None:  # stopped before its first permutation
            run.observed = float(outcome.observed_score)
        if outcome.stopped_early:
            run.interrupt()
    run.settle()


def null_distribution_figure(run: PermutationRun, chance: float | None = None):
    """The histogram of the permuted scores against the observed one (and chance, if given)."""
    return plot_null_distribution(run.null_scores, observed=float(run.observed), p_value=run.p_value,
                                  chance=chance)


# -- sweeps ------------------------------------------------------------------------------------------
@dataclass
class SweepRun:
    """A sweep of one setting, run one value at a time (see `continue_sweep`).

    Attributes
    ----------
    setting : str
        The swept setting (a key of `decoding_core.sweeps.SWEEPABLE`).
    values : list
        Its values, in order.
    configs : list of DecodingConfig
        One configuration per value, checked when the sweep was made.
    base : DecodingConfig
        The configuration the sweep changes.
    dataset_digest, dataset_title : str
        The data set it runs on.
    results : list of DecodingResult
        The runs finished so far.
    run_ids : list of str or None
        Their history ids (None when a run could not be recorded).
    failures : list of (str, str)
        (value label, message) of each value that failed.
    next_index : int
        The next value to run.
    running : bool
    stopped : bool
        Whether the user (or a change of data set) stopped it before the end.
    """

    setting: str
    values: list
    configs: list
    base: DecodingConfig
    dataset_digest: str
    dataset_title: str
    results: list = field(default_factory=list)
    run_ids: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    next_index: int = 0
    running: bool = True
    stopped: bool = False

    @classmethod
    def start(cls, setting: str, values, base_config: DecodingConfig, dataset) -> SweepRun:
        """A sweep about to run (its configurations validated now).

        Raises
        ------
        DecodingInputError
            When a value cannot be used (e.g. a mask the data set lacks).
        """
        configs = sweeps.sweep_configs(base_config, setting, values, dataset)
        return cls(setting=setting, values=list(values), configs=configs, base=base_config,
                   dataset_digest=dataset.digest, dataset_title=dataset.title)

    @property
    def total(self) -> int:
        return len(self.configs)

    @property
    def recorded_run_ids(self) -> list[str]:
        """History ids of the runs that were recorded."""
        return [run_id for run_id in self.run_ids if run_id]

    def label(self, index: int) -> str:
        """``"C = 0.1 (2/6)"``: the value of step ``index``."""
        value = format_value(getattr(self.configs[index], self.setting))
        return f"{self.setting} = {value} ({index + 1}/{self.total})"

    def add_result(self, result, run_id: str | None) -> None:
        """One value ran: keep its result and history id, move to the next value."""
        self.results.append(result)
        self.run_ids.append(run_id)
        self._advance()

    def add_failure(self, label: str, message: str) -> None:
        """One value failed: say why, move to the next value (the sweep goes on)."""
        self.failures.append((label, message))
        self._advance()

    def stop(self) -> None:
        """Stop a running sweep, keeping every run finished before it."""
        if self.running:
            self.running = False
            self.stopped = True

    def fail(self) -> None:
        """A step raised something other than a value's failure: nothing more runs."""
        self.running = False

    def settle(self) -> None:
        """Mark the sweep finished once every value has run."""
        if self.next_index >= self.total:
            self.running = False

    def _advance(self) -> None:
        self.next_index += 1
        self.settle()


def continue_sweep(sweep: SweepRun, dataset, progress: ProgressCallback | None = None) -> None:
    """Run the sweep's remaining values one by one, recording each run.

    A value that fails is reported in ``sweep.failures`` and the sweep goes on.
    Stop (`SweepRun.stop`, which interrupts the script run) keeps every run finished before it.
    """
    total = sweep.total
    while sweep.running and sweep.next_index < total:
        index = sweep.next_index
        label = sweep.label(index)

        def step(fraction, message="", _index=index, _label=label):
            if progress is not None:
                progress(min(1.0, (_index + float(fraction)) / total), f"{_label}: {message}")

        step(0.0, "starting")
        try:
            result = analysis.run_decoding(dataset, sweep.configs[index], progress=step)
        except DecodingInputError as err:
            sweep.add_failure(label, str(err))
        except MemoryError:
            sweep.add_failure(label, "not enough memory; try a smaller mask")
        else:
            record = record_run(result, dataset)
            sweep.add_result(result, record.id if record is not None else None)
    sweep.settle()


def default_values_text(setting: str, dataset=None) -> str:
    """The default values of a sweep of ``setting``, as the Sweep page's text box shows them."""
    return ", ".join(format_value(v) for v in sweeps.default_sweep_values(setting, dataset))


def sweep_figure(sweep: SweepRun):
    """Score against the swept setting, with every fold's score (the spread)."""
    setting = sweep.setting
    results = sweep.results
    values = [getattr(r.config, setting) for r in results]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    x = values if numeric else [format_value(v) for v in values]
    log_x = numeric and sweeps.SWEEPABLE[setting].log_scale and all(v > 0 for v in values)
    chances = {round(float(r.chance_level), 6) for r in results}
    chance = chances.pop() if len(chances) == 1 else None
    return plot_score_vs_setting(
        x, [r.fold_scores for r in results], sweeps.SWEEPABLE[setting].title, log_x=log_x, chance=chance,
    )
