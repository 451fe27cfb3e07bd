"""The numbers of an evaluation report: per-game summaries (raw, HNS, DNS), aggregates with bootstrap CIs,
the comparison with a baseline, and the protocol and package versions that shape them."""

from __future__ import annotations

import math
import platform
from dataclasses import asdict, dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any, Mapping, Sequence

import numpy as np

from jowa.evaluation.metrics import (
    REFERENCES,
    Reference,
    has_reference,
    normalized_scores,
    paper_aggregate,
    run_level_aggregates,
    stratified_bootstrap_ci,
)
from jowa.games import REFERENCE_SCORES, check_game


_VERSIONED_PACKAGES = ("jowa", "numpy", "scipy", "torch", "ale-py", "gymnasium", "matplotlib")
REFERENCE_LABEL = {"human": "HNS", "dqn": "DNS"}
NO_REFERENCES = "no published random/human reference scores"
NO_DQN = "no official DQN reference score; the official base_scores cover 46 games"
NO_HUMAN = "no human reference score; the official table's is a 0 placeholder"


@dataclass(frozen=True)
class EvaluationResults:
    """Raw undiscounted episode returns per game, plus optional per-game settings (e.g. context, K, H).

    Any catalogue game is accepted, with or without reference scores; an unknown name is refused.
    """

    returns: Mapping[str, Sequence[float]]
    metadata: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    name: str = "agent"

    def __post_init__(self) -> None:
        if not self.returns:
            raise ValueError(f"{self.name}: no games in the results")
        frozen: dict[str, tuple[float, ...]] = {}
        for game, values in self.returns.items():
            check_game(game)  # raises on a misspelt or unknown game
            episode_returns = tuple(float(v) for v in np.asarray(values, dtype=np.float64).ravel())
            if not episode_returns:
                raise ValueError(f"{self.name}: {game} has no episode returns")
            if not all(math.isfinite(v) for v in episode_returns):
                raise ValueError(f"{self.name}: {game} has non-finite returns {episode_returns}")
            frozen[game] = episode_returns
        unknown = sorted(set(self.metadata) - set(frozen))
        if unknown:
            raise ValueError(f"{self.name}: metadata for games without returns: {unknown}")
        object.__setattr__(self, "returns", dict(sorted(frozen.items())))
        object.__setattr__(self, "metadata", {g: dict(m) for g, m in sorted(self.metadata.items())})

    @property
    def games(self) -> tuple[str, ...]:
        return tuple(self.returns)

    def means(self) -> dict[str, float]:
        return {game: float(np.mean(values)) for game, values in self.returns.items()}


# ---------------------------------------------------------------- numbers


def reference_key(reference: Reference) -> str:
    return REFERENCE_LABEL[reference].lower()


def _normalised_mean(game: str, mean: float, reference: Reference) -> float | None:
    # None (JSON null, "n/a" in report.md) rather than a number made up for a game without the reference.
    return float(normalized_scores(game, mean, reference)) if has_reference(game, reference) else None


def exclusion_reason(game: str, reference: Reference) -> str | None:
    """Why `game` is left out of the `reference`-normalised aggregates; None if it is included."""
    if has_reference(game, reference):
        return None
    if game not in REFERENCE_SCORES:
        return NO_REFERENCES
    return NO_DQN if reference == "dqn" else NO_HUMAN


def _game_summary(game: str, values: Sequence[float], metadata: Mapping[str, Any]) -> dict[str, Any]:
    arr = np.asarray(values)
    refs = REFERENCE_SCORES.get(game)
    return {
        "returns": list(values),
        "num_episodes": len(values),
        "mean": float(arr.mean()),
        "std": float(arr.std()),  # population std (ddof=0) over the episodes
        "min": float(arr.min()),
        "max": float(arr.max()),
        "hns": _normalised_mean(game, float(arr.mean()), "human"),
        "dns": _normalised_mean(game, float(arr.mean()), "dqn"),
        "reference": {"random": refs.random if refs else None, "human": refs.human if refs else None,
                      "dqn": refs.dqn if refs else None},
        "metadata": dict(metadata),
    }


def _aggregates(results: EvaluationResults, reps: int, seed: int, confidence: float) -> dict[str, Any]:
    """Paper and run-level aggregates per reference, over the games that have that reference only.

    A reference no game has gets null aggregates instead of a number over zero games.
    """
    out: dict[str, Any] = {"paper": {}, "run_level": {}, "games": {}, "excluded": {}}
    means = results.means()
    for reference in REFERENCES:
        key = reference_key(reference)
        games = [g for g in results.games if has_reference(g, reference)]
        out["games"][key] = games
        out["excluded"][key] = {g: exclusion_reason(g, reference) for g in results.games if g not in games}
        if not games:
            out["paper"][key] = out["run_level"][key] = None
            continue
        out["paper"][key] = asdict(paper_aggregate({g: means[g] for g in games}, reference))
        estimates = run_level_aggregates({g: results.returns[g] for g in games}, reference, reps, confidence, seed)
        out["run_level"][key] = {stat: asdict(estimate) for stat, estimate in estimates.items()}
    return out


def summarize(results: EvaluationResults, reps: int, seed: int, confidence: float) -> dict[str, Any]:
    """JSON-ready per-game numbers and both kinds of aggregate for one set of results."""
    return {
        "name": results.name,
        "games": {g: _game_summary(g, v, results.metadata.get(g, {})) for g, v in results.returns.items()},
        "aggregates": _aggregates(results, reps, seed, confidence),
    }


def compare(agent: dict[str, Any], baseline: dict[str, Any], reps: int, seed: int, confidence: float) -> dict[str, Any]:
    """Per-game wins/losses of mean return, and run-level IQMs with CIs over the games both sides have.

    Wins/losses cover every shared game, with or without reference scores. The IQMs are recomputed on
    the shared games that have the reference (null if none), so that the two intervals are like for like.
    """
    shared = sorted(set(agent["games"]) & set(baseline["games"]))
    if not shared:
        raise ValueError(f"{agent['name']} and baseline {baseline['name']} have no game in common")
    diffs = {g: agent["games"][g]["mean"] - baseline["games"][g]["mean"] for g in shared}
    iqm: dict[str, Any] = {}
    for reference in REFERENCES:
        games = [g for g in shared if has_reference(g, reference)]
        if not games:
            iqm[reference_key(reference)] = None
            continue
        a, b = (
            stratified_bootstrap_ci([normalized_scores(g, side["games"][g]["returns"], reference) for g in games],
                                    "iqm", reps, confidence, seed)
            for side in (agent, baseline)
        )
        verdict = "higher" if a.low > b.high else "lower" if a.high < b.low else "overlapping"
        iqm[reference_key(reference)] = {"games": games, "results": asdict(a), "baseline": asdict(b), "verdict": verdict}
    return {
        "games": shared,
        "only_in_results": sorted(set(agent["games"]) - set(baseline["games"])),
        "only_in_baseline": sorted(set(baseline["games"]) - set(agent["games"])),
        "mean_difference": diffs,
        "wins": sum(d > 0 for d in diffs.values()),
        "losses": sum(d < 0 for d in diffs.values()),
        "ties": sum(d == 0 for d in diffs.values()),
        "run_level_iqm_on_shared_games": iqm,
    }


def package_versions() -> dict[str, str | None]:
    """Python and the installed versions of the packages that shape the numbers; None if absent."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def protocol(reps: int, seed: int, confidence: float) -> dict[str, Any]:
    return {
        "score": "raw undiscounted episode return (unclipped game rewards), as provided by the evaluator",
        "per_game": "mean over the game's episodes; HNS = (mean - random) / (human - random), "
                    "DNS = (mean - random) / (DQN - random) (min/max ordered as the official normalize); "
                    "references of the official table of 46 games (docs/official_jowa.md §8.5), and random/human only from DeepMind's "
                    "Atari-57 table (dqn_zoo) for other games",
        "paper_aggregate": "over games: scipy.stats.trim_mean(per-game normalised means, 0.25), median, "
                           "mean, and #games whose raw mean is above the reference (official results.py)",
        "run_level_aggregate": "rliable: IQM = trim_mean(all normalised episode returns pooled, 0.25); "
                               "median and mean are of per-game mean normalised scores",
        "games_without_references": "reported by raw returns only (HNS/DNS null); left out of the HNS and DNS "
                                    "aggregates, and games without an official DQN score out of the DNS ones; "
                                    "compared with a baseline by raw mean return",
        "bootstrap": {"method": "stratified bootstrap (each game's episodes resampled with replacement) "
                                "with percentile intervals",
                      "reps": reps, "seed": seed, "confidence": confidence},
    }
