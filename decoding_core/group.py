"""Group decoding: one configuration over several subjects, and a test of the group against chance.

Each subject is decoded on its own, exactly as a single run would be
(`decoding.run_decoding`); what the group adds is:

* a table of per-subject scores (`group_table`);
* two tests of "decoding beats chance in this population", on the per-subject
  differences ``d_i = mean score_i - chance level_i``:

  - a one-sided one-sample t-test of ``mean(d) > 0`` (`group_t_test`, scipy's
    ``ttest_1samp(d, 0, alternative="greater")``), which assumes the ``d_i`` are
    roughly normal;
  - a sign-flip permutation test (`sign_flip_test`): under the null each ``d_i`` is
    symmetric about 0, so flipping signs at random gives the null distribution of
    ``mean(d)``. All ``2**n`` sign patterns are used when there are no more of them
    than ``n_flips`` (an exact test); otherwise ``n_flips`` random patterns from
    ``numpy.random.default_rng(seed)`` and ``p = (1 + #{null >= observed}) / (1 + n_flips)``.
    With ``n`` subjects the exact p-value cannot go below ``2**-n`` (1/32 for 5 subjects);

* the group mean of the subjects' weight maps when they share one grid (the simulated
  subjects do; real subjects in native space do not, and no mean is made);
* a forest plot (`decoding_core.plotting.group.plot_group_forest`).

Where subjects come from: `simulated_subjects` (seeds, offline), `haxby_subjects`
(downloaded), `bids_subjects` (the subjects of a BIDS folder), or `subjects_from_specs`
(``"simulated:0..4"``, ``"haxby:1..6"``). Their files are read here; with a Dask
scheduler only the masked matrices and the configuration go to the cluster
(`decoding_core.cluster`), and the results are those of the local run.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import stats

from decoding_core import cluster, decoding
from decoding_core.config import DecodingConfig
from decoding_core.errors import DecodingInputError
from decoding_core.progress import ProgressCallback, share

#: Random sign patterns drawn by default (all of them when there are fewer).
DEFAULT_SIGN_FLIPS = 10_000
#: Most sign patterns one test may draw.
MAX_SIGN_FLIPS = 1_000_000
#: Subjects a group needs for a test (a t-test needs a spread).
MIN_SUBJECTS = 2
#: Most subjects one group may hold.
MAX_SUBJECTS = 200
#: The simulated seeds the app and the CLI start from (5 subjects: an exact p-value can reach 1/32).
DEFAULT_SIMULATED_SEEDS = (0, 1, 2, 3, 4)


# ---------------------------------------------------------------------------
# Subjects
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """One subject of a group: a name, and how to load its data set (here, where its files are).

    Attributes
    ----------
    name : str
        Shown in the table and the forest plot; unique within a group.
    load : callable
        ``load(progress) -> Dataset``.
    """

    name: str
    load: Callable


def _spec_subject(text: str, data_dir=None) -> Subject:
    from decoding_core.datasets import DatasetSpec, load_dataset

    spec = DatasetSpec.parse(text)
    options = {"data_dir": data_dir} if spec.kind == "haxby" and data_dir is not None else {}
    if spec.kind == "haxby":
        return Subject(str(spec), lambda progress: load_dataset(spec, progress=progress, **options))
    return Subject(str(spec), lambda progress: load_dataset(spec))


def simulated_subjects(seeds: Sequence[int] = DEFAULT_SIMULATED_SEEDS) -> list[Subject]:
    """Simulated subjects, one per seed (``simulated:SEED``; seed 0 is the built-in data set)."""
    return [_spec_subject(f"simulated:{int(seed)}") for seed in seeds]


def haxby_subjects(numbers: Sequence[int] = (1, 2, 3, 4, 5, 6), data_dir=None) -> list[Subject]:
    """Subjects of Haxby et al. (2001), ``haxby:N`` (downloaded when missing, as `load_haxby`)."""
    return [_spec_subject(f"haxby:{int(number)}", data_dir) for number in numbers]


def bids_subjects(root, *, task: str, subjects: Sequence[str] | None = None, **options) -> list[Subject]:
    """The subjects of a BIDS folder (all of them by default), each loaded by `load_bids`.

    Parameters
    ----------
    root : str or pathlib.Path
    task : str
    subjects : sequence of str, optional
        Subject labels (without ``sub-``); default every subject with a bold file.
    **options
        Passed to `decoding_core.datasets.load_bids` (``hrf_lag``, ``design``, ``mask``...).
    """
    from decoding_core.datasets import bids_choices, load_bids

    labels = list(subjects) if subjects is not None else list(bids_choices(root).subjects)
    return [Subject(f"sub-{label}", lambda progress, label=label: load_bids(
        root, subject=label, task=task, progress=progress, **options)) for label in labels]


_RANGE = re.compile(r"(?P<kind>[a-z]+):(?P<low>[0-9]+)\.\.(?P<high>[0-9]+)")


def subjects_from_specs(texts: Sequence[str], data_dir=None) -> list[Subject]:
    """Subjects named as data sets: ``simulated:3``, ``haxby:2``, or ranges ``simulated:0..4``, ``haxby:1..6``.

    Raises
    ------
    DecodingInputError
        An unknown name, a reversed range, or more than `MAX_SUBJECTS` subjects.
    """
    names = []
    for text in texts:
        match = _RANGE.fullmatch(str(text).strip().lower())
        if match is None:
            names.append(str(text))
            continue
        low, high = int(match["low"]), int(match["high"])
        if low > high or high - low >= MAX_SUBJECTS:
            raise DecodingInputError(f"The range {text!r} must go from a smaller to a larger number "
                                     f"(at most {MAX_SUBJECTS} subjects), as in 'simulated:0..4'.")
        names.extend(f"{match['kind']}:{number}" for number in range(low, high + 1))
    return [_spec_subject(name, data_dir) for name in names]


def _check_subjects(subjects) -> list[Subject]:
    subjects = list(subjects)
    if not MIN_SUBJECTS <= len(subjects) <= MAX_SUBJECTS:
        raise DecodingInputError(
            f"A group needs between {MIN_SUBJECTS} and {MAX_SUBJECTS} subjects; got {len(subjects)}."
        )
    names = [subject.name for subject in subjects]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DecodingInputError(f"Each subject may be in the group once; repeated: {', '.join(repeated)}.")
    return subjects


# ---------------------------------------------------------------------------
# Group tests
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupTTest:
    """One-sided one-sample t-test of the mean difference from chance.

    Attributes
    ----------
    statistic, p_value : float
        scipy's ``ttest_1samp(differences, 0, alternative="greater")``.
    df : int
        Degrees of freedom, ``n - 1``.
    mean_difference : float
        Mean of ``score - chance`` over subjects.
    """

    statistic: float
    p_value: float
    df: int
    mean_difference: float


@dataclass(frozen=True, eq=False)
class SignFlipTest:
    """Sign-flip permutation test of the mean difference from chance.

    Attributes
    ----------
    observed : float
        Mean of ``score - chance`` over subjects.
    null_means : ndarray of shape (n_flips,)
        Mean of each sign-flipped copy.
    p_value : float
        Exact: ``#{null >= observed} / 2**n``; random: ``(1 + #{null >= observed}) / (1 + n_flips)``.
    n_flips : int
    exact : bool
        True when every sign pattern was used.
    seed : int
    """

    observed: float
    null_means: np.ndarray
    p_value: float
    n_flips: int
    exact: bool
    seed: int


def _differences(differences) -> np.ndarray:
    values = np.asarray(differences, dtype=float)
    if values.ndim != 1 or values.size < MIN_SUBJECTS or not np.isfinite(values).all():
        raise DecodingInputError(
            f"A group test needs at least {MIN_SUBJECTS} finite per-subject differences; got {values.tolist()!r}."
        )
    return values


def group_t_test(differences) -> GroupTTest:
    """One-sided one-sample t-test that the mean of ``differences`` (score - chance) is above 0.

    Examples
    --------
    >>> round(group_t_test([0.1, 0.2, 0.15]).p_value, 4)
    0.0175
    """
    values = _differences(differences)
    result = stats.ttest_1samp(values, 0.0, alternative="greater")
    return GroupTTest(float(result.statistic), float(result.pvalue), int(values.size - 1), float(values.mean()))


def _all_sign_patterns(n_subjects: int) -> np.ndarray:
    return np.array(list(itertools.product((1.0, -1.0), repeat=n_subjects)))


def sign_flip_test(differences, *, n_flips: int = DEFAULT_SIGN_FLIPS, seed: int = 0) -> SignFlipTest:
    """Sign-flip permutation test that the mean of ``differences`` (score - chance) is above 0.

    Parameters
    ----------
    differences : array-like of shape (n_subjects,)
    n_flips : int, default=10000
        Random sign patterns to draw; when ``2**n_subjects <= n_flips`` every
        pattern is used once instead (exact test, no randomness).
    seed : int, default=0
        Seed of ``numpy.random.default_rng`` for the random patterns: the signs are
        ``rng.choice([-1.0, 1.0], size=(n_flips, n_subjects))``.

    Returns
    -------
    SignFlipTest
    """
    values = _differences(differences)
    if isinstance(n_flips, bool) or not isinstance(n_flips, (int, np.integer)) or not 1 <= n_flips <= MAX_SIGN_FLIPS:
        raise DecodingInputError(f"'n_flips' must be an integer in the range [1, {MAX_SIGN_FLIPS}]. Got {n_flips!r}.")
    n_subjects = values.size
    # The observed mean is computed as each null mean is (a row of signs times the values).
    observed = float(np.ones(n_subjects) @ values / n_subjects)
    exact = 2**n_subjects <= n_flips
    if exact:
        signs = _all_sign_patterns(n_subjects)
    else:
        signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(int(n_flips), n_subjects))
    null_means = signs @ values / n_subjects
    hits = int(np.sum(null_means >= observed))
    # The exact set holds the observed pattern itself; a random draw adds it (Phipson & Smyth 2010).
    p_value = hits / len(signs) if exact else (hits + 1) / (len(signs) + 1)
    return SignFlipTest(observed, null_means, float(p_value), len(signs), exact, int(seed))


# ---------------------------------------------------------------------------
# Running a group
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GroupResult:
    """One configuration decoded in every subject of a group, and the group's tests.

    Attributes
    ----------
    config : DecodingConfig
    names : tuple of str
        The subjects decoded, in the order given.
    results : tuple of DecodingResult
        One per subject in ``names``.
    n_subjects : int
        Subjects asked for (more than ``len(names)`` when stopped early).
    t_test : GroupTTest or None
    sign_flip : SignFlipTest or None
        None when fewer than `MIN_SUBJECTS` subjects were decoded.
    mean_weight_img : nibabel.Nifti1Image or None
        Mean of the subjects' weight maps when they share one grid.
    map_note : str
        Why there is no group map, or how it was made.
    stopped_early : bool
    where : str
        ``"local"`` or the Dask scheduler's address.
    elapsed_seconds : float
    """

    config: DecodingConfig
    names: tuple
    results: tuple
    n_subjects: int
    t_test: GroupTTest | None
    sign_flip: SignFlipTest | None
    mean_weight_img: nib.Nifti1Image | None
    map_note: str
    stopped_early: bool
    where: str
    elapsed_seconds: float

    @property
    def differences(self) -> np.ndarray:
        """``mean score - chance level`` of each subject."""
        return np.array([r.mean_score - r.chance_level for r in self.results], dtype=float)


def group_table(group: GroupResult) -> pd.DataFrame:
    """One row per subject: ``subject, mean_score, chance_level, difference, std_score, sem,
    ci_low, ci_high, n_folds, n_samples, n_voxels``.

    ``sem`` is the standard error of the mean across folds (``std(ddof=1) / sqrt(n_folds)``);
    ``ci_low, ci_high`` is ``mean +- t(0.975, n_folds - 1) * sem`` (NaN with one fold), the
    interval the forest plot draws: a rough guide, since folds are not independent.
    """
    rows = []
    for name, result in zip(group.names, group.results):
        scores = np.asarray(result.fold_scores, dtype=float)
        n = scores.size
        sem = float(scores.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        half = float(stats.t.ppf(0.975, n - 1) * sem) if n > 1 else math.nan
        rows.append({
            "subject": name, "mean_score": float(result.mean_score), "chance_level": float(result.chance_level),
            "difference": float(result.mean_score - result.chance_level), "std_score": float(result.std_score),
            "sem": sem, "ci_low": float(result.mean_score) - half, "ci_high": float(result.mean_score) + half,
            "n_folds": n, "n_samples": int(result.n_samples), "n_voxels": int(result.n_voxels),
        })
    return pd.DataFrame(rows)


def mean_map(images: Sequence[nib.Nifti1Image], names: Sequence[str]) -> tuple[nib.Nifti1Image | None, str]:
    """The voxel-wise mean of ``images`` when they share shape and affine, and a sentence saying so.

    Returns
    -------
    (image or None, str)
        None and the reason when the grids differ (subjects in their own native space).
    """
    first = images[0]
    for name, image in zip(names[1:], images[1:]):
        if image.shape != first.shape or not np.allclose(image.affine, first.affine, atol=1e-4):
            return None, (
                f"No group map: {names[0]} and {name} are on different grids ({first.shape} vs {image.shape}); "
                "the subjects must be in one template space for a voxel-wise mean."
            )
    data = np.mean([np.asarray(image.dataobj, dtype=np.float64) for image in images], axis=0)
    note = (f"Mean of the weight maps of {len(images)} subjects on one grid; a voxel outside a subject's "
            "mask counts as 0 for that subject.")
    return nib.Nifti1Image(data.astype(np.float32), first.affine), note


def run_group(subjects: Sequence[Subject], config: DecodingConfig, *, scheduler: str | None = None,
              n_flips: int = DEFAULT_SIGN_FLIPS, seed: int = 0, progress: ProgressCallback | None = None,
              should_stop: Callable[[], bool] | None = None) -> GroupResult:
    """Decode ``config`` in every subject, then test the group against chance.

    Parameters
    ----------
    subjects : sequence of Subject
        From `simulated_subjects`, `haxby_subjects`, `bids_subjects` or `subjects_from_specs`.
    config : DecodingConfig
        The same configuration for every subject (its mask name must exist in each).
    scheduler : str, optional
        ``tcp://HOST:PORT`` of a Dask scheduler: subjects are loaded and masked here and
        decoded on the cluster, with the results of the local run.
    n_flips, seed : int
        Of the sign-flip test (`sign_flip_test`).
    progress : callable, optional
        ``progress(fraction, message)``.
    should_stop : callable, optional
        Asked between subjects; when it returns True the group holds the subjects done
        so far (``stopped_early``), tested when there are at least two.

    Returns
    -------
    GroupResult

    Raises
    ------
    DecodingInputError
        Too few or repeated subjects, a subject whose data cannot be decoded under
        ``config`` (the message names the subject), or a `cluster.ClusterError`.
    """
    start = time.perf_counter()
    subjects = _check_subjects(subjects)
    if scheduler is None:
        results, stopped = _decode_here(subjects, config, progress, should_stop)
        where = cluster.LOCAL
    else:
        results, stopped = decode_on_cluster(subjects, config, scheduler, progress, should_stop)
        where = cluster.check_scheduler_address(scheduler)
    names = tuple(subject.name for subject in subjects[:len(results)])
    return group_from_results(config, names, results, n_subjects=len(subjects), stopped_early=stopped, where=where,
                              n_flips=n_flips, seed=seed, elapsed_seconds=time.perf_counter() - start)


def _named(subject: Subject, error: DecodingInputError) -> DecodingInputError:
    return type(error)(f"{subject.name}: {error}") if not str(error).startswith(subject.name) else error


def decode_subject(subject: Subject, config: DecodingConfig, progress: ProgressCallback | None = None):
    """Load ``subject`` and decode ``config`` in it, here: `decoding.run_decoding`.

    Raises
    ------
    DecodingInputError
        The loader's or the decoding's, its message starting with the subject's name.
    """
    try:
        dataset = subject.load(share(progress, 0.0, 0.3))
        return decoding.run_decoding(dataset, config, progress=share(progress, 0.3, 1.0))
    except DecodingInputError as err:
        raise _named(subject, err) from None


def _decode_here(subjects, config, progress, should_stop) -> tuple[list, bool]:
    results = []
    for index, subject in enumerate(subjects):
        if should_stop is not None and should_stop():
            return results, True
        step = share(progress, index / len(subjects), (index + 1) / len(subjects),
                     prefix=f"{subject.name} ({index + 1}/{len(subjects)}): ")
        results.append(decode_subject(subject, config, step))
    return results, False


def decode_on_cluster(subjects: Sequence[Subject], config: DecodingConfig, scheduler: str,
                      progress: ProgressCallback | None = None,
                      should_stop: Callable[[], bool] | None = None) -> tuple[list, bool]:
    """Load and mask every subject here, decode them on the Dask cluster at ``scheduler``.

    Returns
    -------
    (results, stopped_early)
        The `DecodingResult` of the first subjects, in order (all of them unless stopped);
        each equals `decode_subject`'s.
    """
    scheduler = cluster.check_scheduler_address(scheduler)
    tasks = []
    for index, subject in enumerate(subjects):
        if should_stop is not None and should_stop():
            return [], True
        step = share(progress, 0.5 * index / len(subjects), 0.5 * (index + 1) / len(subjects),
                     prefix=f"Loading and masking {subject.name}: ")
        try:
            dataset = subject.load(share(step, 0.0, 0.5))
            tasks.append((cluster.mask_for(dataset, config, share(step, 0.5, 1.0)), config, dataset.tr))
        except DecodingInputError as err:
            raise _named(subject, err) from None
    run = cluster.run_tasks(cluster.decode_masked, tasks, scheduler=scheduler, progress=share(progress, 0.5, 1.0),
                            should_stop=should_stop, what="subjects")
    return list(run.results), run.stopped_early


def group_from_results(config: DecodingConfig, names: Sequence[str], results: Sequence, *,
                       n_subjects: int | None = None, stopped_early: bool = False, where: str = cluster.LOCAL,
                       n_flips: int = DEFAULT_SIGN_FLIPS, seed: int = 0, elapsed_seconds: float = 0.0) -> GroupResult:
    """The group's tests and map from per-subject `DecodingResult` s already computed (as `run_group` makes them)."""
    names, results = tuple(names), tuple(results)
    n_subjects = len(results) if n_subjects is None else n_subjects
    t_test = sign_flip = mean_img = None
    note = f"No group map: {len(results)} subject(s) decoded."
    if len(results) >= MIN_SUBJECTS:
        differences = [r.mean_score - r.chance_level for r in results]
        t_test = group_t_test(differences)
        sign_flip = sign_flip_test(differences, n_flips=n_flips, seed=seed)
        mean_img, note = mean_map([r.weight_img for r in results], names)
    return GroupResult(config, names, results, n_subjects, t_test, sign_flip, mean_img, note, stopped_early, where,
                       elapsed_seconds)


def group_summary(group: GroupResult) -> dict:
    """The group's numbers as plain JSON values (what ``python -m decoding_core group --json`` prints)."""
    table = group_table(group)
    summary = {
        "subjects": list(group.names), "n_subjects": group.n_subjects, "stopped_early": group.stopped_early,
        "where": group.where, "scoring": group.config.scoring, "conditions": list(group.config.conditions),
        "per_subject": table.to_dict(orient="records"),
        "mean_difference": None, "t_test": None, "sign_flip": None, "group_map": group.map_note,
    }
    if group.t_test is not None:
        summary["mean_difference"] = group.t_test.mean_difference
        summary["t_test"] = {"t": group.t_test.statistic, "df": group.t_test.df, "p_value": group.t_test.p_value}
        summary["sign_flip"] = {"p_value": group.sign_flip.p_value, "n_flips": group.sign_flip.n_flips,
                                "exact": group.sign_flip.exact, "seed": group.sign_flip.seed}
    return summary
