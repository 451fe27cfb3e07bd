"""Normalised Atari scores and their aggregates: the paper's per-game IQM and rliable's run-level IQM + CI.

Two aggregates are computed, and they answer different questions (docs/official_jowa.md §8.3):

* **Paper aggregate** (official `results/results.py`): normalise each game's *mean* return, then take
  `scipy.stats.trim_mean(per_game, 0.25)` over the games (for 15 games: drop 3 at each end, average 9),
  the median, the mean, and the number of games whose raw mean beats the reference.
* **Run-level aggregate** (rliable, Agarwal et al. 2021): pool every normalised episode return of every
  game and take the 25 % trimmed mean over all of them, with a 95 % percentile confidence interval from a
  bootstrap stratified by game (each game's episodes are resampled with replacement, separately).

Every function here needs the games' reference scores and raises KeyError for a game without them;
`has_reference` tells which games can be normalised, so a caller can set the others aside first.

Games may have different numbers of episodes. The run-level IQM then pools unequal counts, so a game
with more episodes weighs more; with equal counts it is exactly rliable's `aggregate_iqm`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Mapping, Sequence

import numpy as np
from scipy import stats

from jowa.games import REFERENCE_SCORES, check_game, reference_scores

Reference = Literal["human", "dqn"]
Statistic = Literal["iqm", "median", "mean"]
REFERENCES: tuple[Reference, ...] = ("human", "dqn")
STATISTICS: tuple[Statistic, ...] = ("iqm", "median", "mean")
TRIM = 0.25  # the IQM drops the lowest and highest quarter
RLIABLE_REPS = 50_000  # rliable's default number of bootstrap replications


# ---------------------------------------------------------------- per-game normalisation


def normalize(score: float | np.ndarray, low: float, high: float) -> np.ndarray:
    """(score − min(low, high)) / |high − low| as float64, as the official `normalize`.

    The official code orders the two references before normalising, so a reference below the random
    score swaps roles with it (never the case in the official table of 46 games).
    """
    lo, hi = min(low, high), max(low, high)
    if hi == lo:
        raise ValueError(f"Cannot normalise: both reference scores equal {lo}")
    return (np.asarray(score, dtype=np.float64) - lo) / (hi - lo)


def _check_reference(reference: str) -> None:
    if reference not in REFERENCES:
        raise ValueError(f"Unknown reference {reference!r}; expected one of {REFERENCES}")


def has_reference(game: str, reference: Reference) -> bool:
    """Whether `game` can be normalised against `reference` (its random and reference scores are known)."""
    _check_reference(reference)
    refs = REFERENCE_SCORES.get(check_game(game))
    return refs is not None and (refs.human if reference == "human" else refs.dqn) is not None


def reference_value(game: str, reference: Reference) -> float:
    """The raw score that normalises to 1 for `reference` ("human" or "dqn")."""
    _check_reference(reference)
    refs = reference_scores(game)
    value = refs.human if reference == "human" else refs.dqn
    if value is None:
        raise KeyError(f"No {reference} reference score for {game!r} in the official table of 46 games or "
                       "DeepMind's Atari-57 table (docs/official_jowa.md §8.5), so it cannot be normalised")
    return value


def normalized_scores(game: str, scores: float | Sequence[float] | np.ndarray, reference: Reference) -> np.ndarray:
    """HNS (reference="human") or DNS (reference="dqn") of raw returns of one game, as float64."""
    values = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{game}: scores must be finite, got {values}")
    return normalize(values, reference_scores(game).random, reference_value(game, reference))


def human_normalized(game: str, scores: float | Sequence[float] | np.ndarray) -> np.ndarray:
    return normalized_scores(game, scores, "human")


def dqn_normalized(game: str, scores: float | Sequence[float] | np.ndarray) -> np.ndarray:
    return normalized_scores(game, scores, "dqn")


# ---------------------------------------------------------------- the paper's aggregate over games


def trimmed_mean(values: Sequence[float] | np.ndarray, proportion: float = TRIM) -> float:
    """scipy.stats.trim_mean over all values (flattened): the IQM for proportion 0.25."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size == 0:
        raise ValueError("trimmed_mean of no values")
    return float(stats.trim_mean(flat, proportion))


@dataclass(frozen=True)
class PaperAggregate:
    """Aggregates over per-game mean scores, computed as the official results/results.py does."""

    reference: Reference
    iqm: float  # trim_mean of the per-game normalised means, 0.25
    median: float
    mean: float
    num_above_reference: int  # games whose raw mean is strictly above the reference's raw score
    num_games: int


def paper_aggregate(per_game_means: Mapping[str, float], reference: Reference) -> PaperAggregate:
    """Aggregate per-game mean raw returns {game: mean} the way the paper's table does."""
    if not per_game_means:
        raise ValueError("paper_aggregate needs at least one game")
    games = sorted(per_game_means)
    normalised = np.array([float(normalized_scores(g, per_game_means[g], reference)) for g in games])
    above = sum(float(per_game_means[g]) > reference_value(g, reference) for g in games)
    return PaperAggregate(
        reference=reference,
        iqm=trimmed_mean(normalised),
        median=float(np.median(normalised)),
        mean=float(np.mean(normalised)),
        num_above_reference=int(above),
        num_games=len(games),
    )


# ---------------------------------------------------------------- run-level statistics (rliable)

# A statistic maps per-game score blocks, each [R, n_game], to one value per replication: [R].
BlockStatistic = Callable[[Sequence[np.ndarray]], np.ndarray]


def _pooled_iqm(blocks: Sequence[np.ndarray]) -> np.ndarray:
    # rliable aggregate_iqm: trim_mean over every run of every task, one row per replication.
    return stats.trim_mean(np.concatenate(blocks, axis=1), TRIM, axis=1)


def _per_game_means(blocks: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack([block.mean(axis=1) for block in blocks], axis=1)  # [R, G]


def _median_of_means(blocks: Sequence[np.ndarray]) -> np.ndarray:
    return np.median(_per_game_means(blocks), axis=1)  # rliable aggregate_median


def _mean_of_means(blocks: Sequence[np.ndarray]) -> np.ndarray:
    return _per_game_means(blocks).mean(axis=1)  # rliable aggregate_mean


_STATISTICS: dict[str, BlockStatistic] = {"iqm": _pooled_iqm, "median": _median_of_means, "mean": _mean_of_means}


def as_game_blocks(scores: np.ndarray | Sequence[Sequence[float]]) -> list[np.ndarray]:
    """Per-game 1-D float64 arrays from a [num_runs, num_games] matrix or a list of per-game score lists.

    A 2-D ndarray is read as rliable's layout (runs × games); any other sequence is one entry per game.
    """
    if isinstance(scores, np.ndarray):
        if scores.ndim != 2:
            raise ValueError(f"A score matrix must be [num_runs, num_games], got shape {scores.shape}")
        blocks = [np.asarray(scores[:, g], dtype=np.float64) for g in range(scores.shape[1])]
    else:
        blocks = [np.asarray(game_scores, dtype=np.float64).ravel() for game_scores in scores]
    if not blocks:
        raise ValueError("No games given")
    for g, block in enumerate(blocks):
        if block.size == 0:
            raise ValueError(f"Game #{g} has no scores")
        if not np.all(np.isfinite(block)):
            raise ValueError(f"Game #{g} has non-finite scores")
    return blocks


def run_level_statistic(scores: np.ndarray | Sequence[Sequence[float]], statistic: Statistic = "iqm") -> float:
    """Point estimate: "iqm" pools all runs (rliable aggregate_iqm); "median"/"mean" are of per-game means."""
    blocks = as_game_blocks(scores)
    return float(_statistic(statistic)([block[None, :] for block in blocks])[0])


def _statistic(name: str) -> BlockStatistic:
    if name not in _STATISTICS:
        raise ValueError(f"Unknown statistic {name!r}; expected one of {STATISTICS}")
    return _STATISTICS[name]


@dataclass(frozen=True)
class IntervalEstimate:
    point: float
    low: float
    high: float
    confidence: float
    reps: int
    seed: int


def bootstrap_distribution(
    scores: np.ndarray | Sequence[Sequence[float]],
    statistic: Statistic = "iqm",
    reps: int = RLIABLE_REPS,
    seed: int = 0,
    max_chunk_elements: int = 1 << 22,
) -> np.ndarray:
    """[reps] bootstrap replicates of `statistic`, resampling runs with replacement within each game.

    Vectorised in chunks of replications (about `max_chunk_elements` resampled scores per chunk).
    Each game draws from its own generator spawned from `seed`, so the result does not depend on the
    chunk size.
    """
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    blocks = as_game_blocks(scores)
    stat = _statistic(statistic)
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(blocks))]
    total_runs = sum(block.size for block in blocks)
    chunk = max(1, min(reps, max_chunk_elements // total_runs))
    out = np.empty(reps, dtype=np.float64)
    for start in range(0, reps, chunk):
        n = min(chunk, reps - start)
        resampled = [block[rng.integers(0, block.size, size=(n, block.size))] for block, rng in zip(blocks, rngs)]
        out[start:start + n] = stat(resampled)
    return out


def stratified_bootstrap_ci(
    scores: np.ndarray | Sequence[Sequence[float]],
    statistic: Statistic = "iqm",
    reps: int = RLIABLE_REPS,
    confidence: float = 0.95,
    seed: int = 0,
    max_chunk_elements: int = 1 << 22,
) -> IntervalEstimate:
    """Point estimate and percentile CI, as rliable `get_interval_estimates` with `StratifiedBootstrap`.

    `scores` is a [num_runs, num_games] matrix (rliable's layout) or one score list per game (then
    the games may have different numbers of runs). The interval is `np.percentile` (linear) of the
    replicates at (1 ± confidence) / 2, as arch's "percentile" method.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    replicates = bootstrap_distribution(scores, statistic, reps, seed, max_chunk_elements)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return IntervalEstimate(
        point=run_level_statistic(scores, statistic), low=float(low), high=float(high),
        confidence=confidence, reps=reps, seed=seed,
    )


def normalized_run_scores(returns: Mapping[str, Sequence[float]], reference: Reference) -> list[np.ndarray]:
    """Per-game arrays of normalised episode returns, games in sorted order."""
    if not returns:
        raise ValueError("No games given")
    return [normalized_scores(game, returns[game], reference) for game in sorted(returns)]


def run_level_aggregates(
    returns: Mapping[str, Sequence[float]],
    reference: Reference,
    reps: int = RLIABLE_REPS,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[Statistic, IntervalEstimate]:
    """IQM, median and mean of normalised episode returns {game: [returns]}, each with its bootstrap CI."""
    blocks = normalized_run_scores(returns, reference)
    return {name: stratified_bootstrap_ci(blocks, name, reps, confidence, seed) for name in STATISTICS}
