"""The Group page's logic: which subjects, a group run across script runs, its figures.

A group takes longer than one script run may last: the user can press Stop (which
interrupts the script), move to another page, or come back. It is therefore a record in
the session state (`GroupRun`) that `continue_group` advances subject by subject, each
through the job gate, keeping every subject finished before a Stop. Each subject's result
is kept in the shared results store under its data set's name and the configuration's
digest (only built-in data sets are offered: public, identical for everyone).

When ``DECODING_LAB_SCHEDULER`` names a Dask scheduler, the remaining subjects are
masked here and decoded on that cluster in one go (`decoding_core.group.decode_on_cluster`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from decoding_core import environment, group
from decoding_core.config import DecodingConfig
from decoding_core.datasets.simulated import SIMULATED_MASKS
from decoding_core.errors import DecodingInputError
from decoding_core.plotting.group import plot_group_forest
from decoding_core.progress import share
from ui import cache
from ui.feedback import ProgressCallback, run_heavy

#: Where the subjects come from, as the page offers them.
SOURCES = {"simulated": "Simulated subjects (built in, offline)", "haxby": "Haxby 2001 subjects (download)"}
#: Seeds offered for simulated subjects (seed 0 is the built-in data set).
SEED_CHOICES = tuple(range(20))
#: Haxby subjects offered.
HAXBY_CHOICES = (1, 2, 3, 4, 5, 6)
#: The mask a group of simulated subjects uses when the configuration's is not one of theirs.
FALLBACK_MASK = "vt"


def scheduler_address() -> str | None:
    """The Dask scheduler of ``DECODING_LAB_SCHEDULER``, or None (run here)."""
    return environment.read(environment.SCHEDULER)


def subject_specs(source: str, choices) -> tuple[str, ...]:
    """The data-set names of the chosen subjects, in a stable order."""
    if source == "haxby":
        return tuple(f"haxby:{number}" for number in sorted(choices))
    return tuple(f"simulated:{seed}" for seed in sorted(choices))


def group_config(config_values: dict, source: str) -> tuple[DecodingConfig, str | None]:
    """The configuration from Configure for a group, and a note when its mask had to change.

    Simulated subjects have the masks `SIMULATED_MASKS`; a configuration made on another data
    set (an upload's "uploaded" mask) uses `FALLBACK_MASK` instead, and the note says so.
    """
    config = DecodingConfig.from_dict(config_values)
    if source == "simulated" and config.mask_name not in SIMULATED_MASKS:
        note = (f"The configuration's mask '{config.mask_name}' is not one of the simulated subjects' masks: "
                f"the group uses '{FALLBACK_MASK}'.")
        return config.replace(mask_name=FALLBACK_MASK), note
    return config, None


@dataclass
class GroupRun:
    """A group decoded subject by subject (see `continue_group`).

    Attributes
    ----------
    specs : tuple of str
        The subjects' data-set names (``simulated:3``, ``haxby:2``).
    config : DecodingConfig
    scheduler : str or None
        The Dask scheduler it runs on (None: here).
    results : list of DecodingResult
        One per subject done, in the order of ``specs``.
    running, stopped : bool
    result : GroupResult or None
        The group's table and tests over the subjects done (set when it ends).
    """

    specs: tuple
    config: DecodingConfig
    scheduler: str | None = None
    results: list = field(default_factory=list)
    running: bool = True
    stopped: bool = False
    result: object = None

    @property
    def total(self) -> int:
        return len(self.specs)

    def stop(self) -> None:
        """The user pressed Stop: keep the subjects done so far."""
        if self.running:
            self.running, self.stopped = False, True
            self._settle()

    def fail(self) -> None:
        """A subject raised: nothing more runs (the page shows the error); the subjects done stay."""
        self.running = False
        self._settle()

    def _settle(self) -> None:
        names = self.specs[:len(self.results)]
        self.result = group.group_from_results(
            self.config, names, self.results, n_subjects=self.total, stopped_early=len(names) < self.total,
            where=self.scheduler or "local",
        )


def start_group(specs, config: DecodingConfig) -> GroupRun:
    """A new group run of ``config`` over ``specs`` (checked: two or more distinct subjects)."""
    group.subjects_from_specs(specs)  # refuses an unknown name before anything runs
    if len(set(specs)) < group.MIN_SUBJECTS:
        raise DecodingInputError(f"Choose at least {group.MIN_SUBJECTS} subjects for a group.")
    return GroupRun(specs=tuple(specs), config=config, scheduler=scheduler_address())


def _subject_key(spec: str, config: DecodingConfig) -> tuple:
    return ("group-subject", spec, config.digest())


def continue_group(run: GroupRun, progress: ProgressCallback | None = None) -> None:
    """Decode the run's remaining subjects, keeping each as it finishes; then its group result."""
    remaining = group.subjects_from_specs(run.specs[len(run.results):])
    if run.scheduler is not None and remaining:
        # The cluster reports over the remaining subjects; the bar is over all of them.
        overall = share(progress, len(run.results) / run.total, 1.0)
        results, _ = run_heavy(lambda: group.decode_on_cluster(remaining, run.config, run.scheduler, overall))
        run.results.extend(results)
    for subject in remaining if run.scheduler is None else ():
        if not run.running:
            break
        index = len(run.results)

        def step(fraction, message="", _index=index, _name=subject.name):
            if progress is not None:
                progress(min(1.0, (_index + float(fraction)) / run.total), f"{_name} ({_index + 1}/{run.total}): {message}")

        result = cache.get_or_compute("results", _subject_key(subject.name, run.config),
                                      lambda subject=subject, step=step: run_heavy(
                                          lambda: group.decode_subject(subject, run.config, step)))
        run.results.append(result)
    if len(run.results) == run.total:
        run.running = False
        run._settle()


def group_figure(result):
    """The forest plot of a group result."""
    return plot_group_forest(result, group.group_table(result))


def group_table(result):
    """The per-subject table as the page shows it (rounded)."""
    table = group.group_table(result)
    return table[["subject", "mean_score", "chance_level", "difference", "ci_low", "ci_high", "n_folds",
                  "n_samples", "n_voxels"]].round(4)
