"""Evaluation report: report.json (every raw return, per-game and aggregate metrics), report.md, PNG plots.

Any game of the catalogue may be evaluated. A game without random/human reference scores
(`jowa.games.REFERENCE_SCORES`) is reported by its raw returns only: its HNS and DNS are null ("n/a") and it
is left out of the normalised aggregates, and report.md names it. A game with random/human but no official
DQN score is left out of the DNS aggregates only. The per-game comparison with a baseline (raw means,
wins/losses) covers every shared game.

`write_report(out_dir, results, settings, baseline=None)` builds the whole directory in a temporary
sibling and renames it into place, so a reader never sees half a report. An existing `out_dir` is
replaced only if it is empty or holds a previous report (a `report.json`); anything else is refused.
`write_video(frames, path)` writes an episode's frames as GIF (or MP4 where imageio-ffmpeg is installed).
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from jowa.evaluation.episode_log import EPISODES_NAME
from jowa.evaluation.metrics import (
    REFERENCES,
    RLIABLE_REPS,
    STATISTICS,
    Reference,
    has_reference,
    normalized_scores,
    paper_aggregate,
    run_level_aggregates,
    stratified_bootstrap_ci,
)
from jowa.games import REFERENCE_SCORES, check_game

REPORT_FORMAT = "jowa-evaluation-report/1"
PNG_FILES = ("raw_returns.png", "normalized_scores.png", "aggregates.png")
_VERSIONED_PACKAGES = ("jowa", "numpy", "scipy", "torch", "ale-py", "gymnasium", "matplotlib")
_REFERENCE_LABEL = {"human": "HNS", "dqn": "DNS"}
_NO_REFERENCES = "no published random/human reference scores"
_NO_DQN = "no official DQN reference score; the official base_scores cover 46 games"
_NO_HUMAN = "no human reference score; the official table's is a 0 placeholder"


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


def _key(reference: Reference) -> str:
    return _REFERENCE_LABEL[reference].lower()


def _normalised_mean(game: str, mean: float, reference: Reference) -> float | None:
    # None (JSON null, "n/a" in report.md) rather than a number made up for a game without the reference.
    return float(normalized_scores(game, mean, reference)) if has_reference(game, reference) else None


def exclusion_reason(game: str, reference: Reference) -> str | None:
    """Why `game` is left out of the `reference`-normalised aggregates; None if it is included."""
    if has_reference(game, reference):
        return None
    if game not in REFERENCE_SCORES:
        return _NO_REFERENCES
    return _NO_DQN if reference == "dqn" else _NO_HUMAN


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
        key = _key(reference)
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
            iqm[_key(reference)] = None
            continue
        a, b = (
            stratified_bootstrap_ci([normalized_scores(g, side["games"][g]["returns"], reference) for g in games],
                                    "iqm", reps, confidence, seed)
            for side in (agent, baseline)
        )
        verdict = "higher" if a.low > b.high else "lower" if a.high < b.low else "overlapping"
        iqm[_key(reference)] = {"games": games, "results": asdict(a), "baseline": asdict(b), "verdict": verdict}
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


# ---------------------------------------------------------------- markdown


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.1f}" if abs(x) >= 100 else f"{x:.3g}" if x != 0 else "0"


def _fmt_score(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _ci(estimate: Mapping[str, float]) -> str:
    return f"{estimate['point']:.3f} [{estimate['low']:.3f}, {estimate['high']:.3f}]"


def _settings_cell(meta: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in meta.items()) or "–"


def _game_table(summary: Mapping[str, Any]) -> list[str]:
    lines = ["| Game | episodes | mean ± std | min | max | HNS | DNS | random | human | DQN | settings |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for game, g in summary["games"].items():
        ref = g["reference"]
        lines.append(
            f"| {game} | {g['num_episodes']} | {_fmt(g['mean'])} ± {_fmt(g['std'])} | {_fmt(g['min'])} | "
            f"{_fmt(g['max'])} | {_fmt_score(g['hns'])} | {_fmt_score(g['dns'])} | {_fmt(ref['random'])} | "
            f"{_fmt(ref['human'])} | {_fmt(ref['dqn'])} | {_settings_cell(g['metadata'])} |"
        )
    return lines


def _aggregate_rows(key: str, label: str, pct: str) -> list[tuple[str, Any]]:
    """(row label, cell function of one side's aggregates) for one reference; cells only see non-null ones."""
    return [
        (f"IQM {label}, paper (trim_mean of per-game means)", lambda a: f"{a['paper'][key]['iqm']:.4f}"),
        (f"Median {label}, paper", lambda a: f"{a['paper'][key]['median']:.4f}"),
        (f"Mean {label}, paper", lambda a: f"{a['paper'][key]['mean']:.4f}"),
        (f"# games > {'human' if key == 'hns' else 'DQN'}",
         lambda a: f"{a['paper'][key]['num_above_reference']} / {a['paper'][key]['num_games']}"),
        (f"IQM {label}, run-level [{pct} CI]", lambda a: _ci(a["run_level"][key]["iqm"])),
        (f"Median {label}, run-level [{pct} CI]", lambda a: _ci(a["run_level"][key]["median"])),
        (f"Mean {label}, run-level [{pct} CI]", lambda a: _ci(a["run_level"][key]["mean"])),
    ]


def _aggregate_table(summaries: Sequence[Mapping[str, Any]], confidence: float) -> list[str]:
    """One column per side, rows for each reference some side has games for; "n/a" where a side has none."""
    pct = f"{100 * confidence:g} %"
    lines = ["| Aggregate | " + " | ".join(s["name"] for s in summaries) + " |", "|---|" + "---:|" * len(summaries)]
    for reference in REFERENCES:
        key = _key(reference)
        if not any(s["aggregates"]["games"][key] for s in summaries):
            continue
        label = _REFERENCE_LABEL[reference]
        counts = [str(len(s["aggregates"]["games"][key])) for s in summaries]
        lines.append(f"| Games in the {label} aggregates | " + " | ".join(counts) + " |")
        for row_label, cell in _aggregate_rows(key, label, pct):
            cells = ["n/a" if s["aggregates"]["paper"][key] is None else cell(s["aggregates"]) for s in summaries]
            lines.append(f"| {row_label} | " + " | ".join(cells) + " |")
    return lines


def _exclusion_lines(summaries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Bullets naming the games left out of the aggregates, over all sides of the report, and why."""
    out = {key: {g for s in summaries for g in s["aggregates"]["excluded"][key]} for key in ("hns", "dns")}
    groups = ((sorted(out["hns"] & out["dns"]), "the HNS and DNS aggregates", _NO_REFERENCES),
              (sorted(out["dns"] - out["hns"]), "the DNS aggregates only", _NO_DQN),
              (sorted(out["hns"] - out["dns"]), "the HNS aggregates only", _NO_HUMAN))
    lines = []
    for games, where, why in groups:
        if games:
            lines.append(f"- {', '.join(games)}: left out of {where} ({why}).")
    return lines


def _aggregate_section(summaries: Sequence[Mapping[str, Any]], confidence: float) -> list[str]:
    if not any(s["aggregates"]["games"][_key(r)] for s in summaries for r in REFERENCES):
        return ["No evaluated game has reference scores, so there is no normalised aggregate (no HNS/DNS IQM, "
                "median, mean or # games above a reference); the raw returns per game are the result.", ""]
    lines = [*_aggregate_table(summaries, confidence), ""]
    for reference in REFERENCES:
        if not any(s["aggregates"]["games"][_key(reference)] for s in summaries):
            lines += [f"No evaluated game has a {'DQN' if reference == 'dqn' else 'human'} reference score, so "
                      f"there is no {_REFERENCE_LABEL[reference]} aggregate.", ""]
    exclusions = _exclusion_lines(summaries)
    if exclusions:
        lines += ["Each aggregate covers only the games with that reference score; their raw returns are in the "
                  "per-game table (and the comparison with the baseline, if any):", "", *exclusions, ""]
    return lines


def _baseline_sentence(baseline_name: str, cmp: Mapping[str, Any]) -> str:
    text = (f"Against the baseline **{baseline_name}**, the agent's mean return is higher in {cmp['wins']} of "
            f"{len(cmp['games'])} shared games (lower in {cmp['losses']}, equal in {cmp['ties']}).")
    iqm = cmp["run_level_iqm_on_shared_games"]["hns"]
    if iqm is None:
        text += (" None of the shared games has human reference scores, so this is a comparison of raw mean "
                 "returns only, with no normalised IQM.")
    else:
        verdict = {
            "higher": "and the confidence intervals do not overlap, so the agent is better than this baseline "
                      "under this bootstrap",
            "lower": "and the confidence intervals do not overlap, so the agent is worse than this baseline",
            "overlapping": "and the confidence intervals overlap, so this evaluation does not show a difference "
                           "from the baseline",
        }[iqm["verdict"]]
        over = ("those games" if len(iqm["games"]) == len(cmp["games"])
                else f"the {len(iqm['games'])} shared games with human reference scores ({', '.join(iqm['games'])})")
        text += (f" Over {over}, its run-level IQM HNS is {_ci(iqm['results'])} versus {_ci(iqm['baseline'])}, "
                 f"{verdict}.")
    if cmp["only_in_results"] or cmp["only_in_baseline"]:
        text += (f" Left out of this comparison: {', '.join(cmp['only_in_results']) or 'none'} (no baseline), "
                 f"{', '.join(cmp['only_in_baseline']) or 'none'} (baseline only); the aggregate table covers "
                 "each side's own games.")
    return text


def _comparison_table(agent: Mapping[str, Any], baseline: Mapping[str, Any], cmp: Mapping[str, Any]) -> list[str]:
    lines = [f"| Game | {agent['name']} mean ± std | {baseline['name']} mean ± std | difference | agent is |",
             "|---|---:|---:|---:|---|"]
    for game in cmp["games"]:
        a, b, d = agent["games"][game], baseline["games"][game], cmp["mean_difference"][game]
        outcome = "higher" if d > 0 else "lower" if d < 0 else "equal"
        lines.append(f"| {game} | {_fmt(a['mean'])} ± {_fmt(a['std'])} | {_fmt(b['mean'])} ± {_fmt(b['std'])} "
                     f"| {_fmt(d)} | {outcome} |")
    return lines


def _has_any_reference(summaries: Sequence[Mapping[str, Any]]) -> bool:
    return any(s["aggregates"]["games"]["hns"] for s in summaries)


def render_markdown(report: Mapping[str, Any]) -> str:
    agent, baseline, cmp = report["results"], report["baseline"], report["comparison"]
    summaries = [agent] + ([baseline] if baseline else [])
    proto = report["protocol"]
    boot = proto["bootstrap"]
    counts = sorted({g["num_episodes"] for g in agent["games"].values()})
    episodes = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    lines = [
        f"# Evaluation report: {agent['name']}", "",
        *([f"> **{report['note']}**", ""] if report.get("note") else []),
        f"Created {report['created_utc']} · {len(agent['games'])} games "
        f"({len(agent['aggregates']['games']['hns'])} with reference scores) · {episodes} episodes per game.", "",
        "## Protocol", "",
        f"- **Score:** {proto['score']}.",
        f"- **Per game:** {proto['per_game']}.",
        f"- **Paper aggregate:** {proto['paper_aggregate']}. This is the number the JOWA paper reports "
        "(an IQM over games, not over runs).",
        f"- **Run-level aggregate:** {proto['run_level_aggregate']}; {100 * boot['confidence']:g} % CIs from a "
        f"{boot['method']} ({boot['reps']:,} replications, seed {boot['seed']}).",
        f"- **Games without reference scores:** {proto['games_without_references']}.",
        "- **Caveat:** with greedy decisions and no sticky actions, episodes are nearly deterministic and often "
        "repeat the same return (docs/official_jowa.md §8.2). The bootstrap treats them as independent, so its intervals "
        "describe episode-to-episode spread, not seed-to-seed uncertainty, and are likely too narrow.",
        "", "### Settings", "", "```json", json.dumps(report["settings"], indent=2, sort_keys=True), "```", "",
        "## Per-game scores", "", *_game_table(agent), "",
        "HNS/DNS are of the per-game mean; std is the population std over episodes; n/a: the game has no such "
        "reference score.", "",
        "## Aggregates", "", *_aggregate_section(summaries, boot["confidence"]),
        "## Comparison with the baseline", "",
    ]
    if baseline is not None:
        lines += [_baseline_sentence(baseline["name"], cmp), "", *_comparison_table(agent, baseline, cmp), ""]
    else:
        lines += ["No baseline returns were evaluated alongside this run; the only comparison with random "
                  "play is through the published random scores (HNS = DNS = 0)"
                  + (", which some games here lack." if agent["aggregates"]["excluded"]["hns"] else "."), ""]
    lines += ["## Plots", "", "![raw returns per game](raw_returns.png)", ""]
    if _has_any_reference(summaries):
        lines += ["![normalised scores per game](normalized_scores.png)", "",
                  "![aggregates with confidence intervals](aggregates.png)", ""]
    else:
        lines += ["No normalised plots: no game has reference scores (normalized_scores.png and aggregates.png "
                  "only say so).", ""]
    lines += ["## Versions", "", *[f"- {k}: {v or 'not installed'}" for k, v in report["versions"].items()], ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- plots (matplotlib, no pyplot state)


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # Agg canvas: renders without a display and without touching pyplot's backend
    return fig


def _note(ax: Any, text: str) -> None:
    """Say in the panel why it is empty, instead of drawing a misleading axis."""
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9, transform=ax.transAxes)
    ax.set_axis_off()


def plot_raw_returns(summaries: Sequence[Mapping[str, Any]], path: Path) -> None:
    """One panel per game (raw scales differ by orders of magnitude): bar per side = mean, dots = episodes."""
    games = sorted(set().union(*(s["games"] for s in summaries)))
    cols = min(5, len(games))
    rows = math.ceil(len(games) / cols)
    fig = _new_figure(max(6.0, 2.6 * cols + 0.5), 2.4 * rows + 0.8)
    for n, game in enumerate(games):
        ax = fig.add_subplot(rows, cols, n + 1)
        for i, summary in enumerate(summaries):
            g = summary["games"].get(game)
            if g is None:
                continue
            ax.bar([i], [g["mean"]], width=0.6, color=f"C{i}", alpha=0.8)
            ax.plot(np.full(len(g["returns"]), i), g["returns"], "k.", markersize=3)
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_xticks(range(len(summaries)))
        ax.set_xticklabels([s["name"] for s in summaries], fontsize=7)
        ax.set_xlim(-0.6, len(summaries) - 0.4)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(game, fontsize=9)
    fig.suptitle("Raw return per game (bar: mean, dots: episodes)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")


def plot_normalized_scores(summaries: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Bars of per-game mean HNS and DNS, a dot per episode; symlog axis because Atlantis reaches ~100.

    Each row shows only the games with that reference score; a row with none says so.
    """
    all_games = sorted(set().union(*(s["games"] for s in summaries)))
    fig = _new_figure(max(8.0, 0.6 * len(all_games) + 2), 7.0)
    width = 0.8 / len(summaries)
    for row, reference in enumerate(REFERENCES):
        ax = fig.add_subplot(2, 1, row + 1)
        games = [g for g in all_games if has_reference(g, reference)]
        if not games:
            _note(ax, f"No evaluated game has a {'DQN' if reference == 'dqn' else 'human'} reference score: "
                      f"no {_REFERENCE_LABEL[reference]} to plot")
            continue
        for i, summary in enumerate(summaries):
            x = np.arange(len(games)) - 0.4 + width * (i + 0.5)
            present = [g in summary["games"] for g in games]
            means = [summary["games"][g][_key(reference)] if p else np.nan for g, p in zip(games, present)]
            ax.bar(x, means, width=width, label=summary["name"], alpha=0.8)
            for xi, g, p in zip(x, games, present):
                if p:
                    episode_scores = normalized_scores(g, summary["games"][g]["returns"], reference)
                    ax.plot(np.full(episode_scores.size, xi), episode_scores, "k.", markersize=2)
        ax.axhline(1.0, color="gray", linestyle="--", linewidth=1)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylabel(f"{_REFERENCE_LABEL[reference]} (symlog)")
        ax.set_xticks(np.arange(len(games)))
        ax.set_xticklabels(games, rotation=45, ha="right", fontsize=8)
        ax.legend(fontsize=8)
    fig.suptitle("Normalised score per game (bar: mean, dots: episodes; dashed: reference = 1)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")


def plot_aggregates(summaries: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Run-level IQM / median / mean with CI error bars; crosses mark the paper-style (per-game) value.

    A side without games for a reference is left out of that panel; a panel with no side says so.
    """
    fig = _new_figure(10.0, 6.0)
    for row, reference in enumerate(REFERENCES):
        key = _key(reference)
        drawn = [(i, s) for i, s in enumerate(summaries) if s["aggregates"]["run_level"][key] is not None]
        for col, stat in enumerate(STATISTICS):
            ax = fig.add_subplot(2, len(STATISTICS), row * len(STATISTICS) + col + 1)
            title = f"{stat.upper() if stat == 'iqm' else stat} {_REFERENCE_LABEL[reference]}"
            if not drawn:
                ax.set_title(title, fontsize=9)
                _note(ax, "no game with this reference")
                continue
            for i, summary in drawn:
                est = summary["aggregates"]["run_level"][key][stat]
                err = [[est["point"] - est["low"]], [est["high"] - est["point"]]]
                ax.errorbar([i], [est["point"]], yerr=err, fmt="o", capsize=4, label=summary["name"])
                ax.plot([i], [summary["aggregates"]["paper"][key][stat]], "kx")
            ax.set_xticks(range(len(summaries)))
            ax.set_xticklabels([s["name"] for s in summaries], fontsize=8)
            ax.set_xlim(-0.5, len(summaries) - 0.5)
            ax.set_title(title, fontsize=9)
    fig.suptitle("Run-level aggregates with bootstrap CIs (x: paper-style aggregate over per-game means)")
    fig.tight_layout()
    fig.savefig(path, format="png")


# ---------------------------------------------------------------- writing


def _json_ready(value: Any, what: str) -> Any:
    """A JSON round-trip of `value`; fails before any work if it cannot be written to report.json."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be JSON-serialisable without NaN/inf: {err}") from err


def _check_destination(out_dir: Path) -> None:
    # Only an empty directory or a previous report may be replaced: never wipe unrelated files.
    if not out_dir.exists():
        return
    known = (out_dir / "report.json").exists() or (out_dir / EPISODES_NAME).exists()
    if not out_dir.is_dir() or (any(out_dir.iterdir()) and not known):
        raise FileExistsError(f"{out_dir} exists and is not an empty directory or a previous report; "
                              "choose another output directory")


def _publish(tmp_dir: Path, out_dir: Path) -> None:
    _check_destination(out_dir)
    if not out_dir.exists():
        tmp_dir.rename(out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
    out_dir.rename(old)
    tmp_dir.rename(out_dir)
    shutil.rmtree(old)


def write_report(
    out_dir: str | Path,
    results: EvaluationResults,
    settings: Mapping[str, Any],
    baseline: EvaluationResults | None = None,
    *,
    bootstrap_reps: int = RLIABLE_REPS,
    seed: int = 0,
    confidence: float = 0.95,
    note: str | None = None,
    sections: Mapping[str, tuple[list[str], Any]] | None = None,
) -> Path:
    """Write report.json, report.md and the PNG plots into `out_dir` atomically; return its path.

    `note` (e.g. that the report is partial) heads report.md; `sections` maps a title to (markdown lines,
    JSON data) for extra sections, e.g. reference agents; the episode log of a previous write
    (`episodes.jsonl`) is kept."""
    out_dir = Path(out_dir)
    settings_json = _json_ready(dict(settings), "settings")
    for side in (results, baseline):
        if side is not None:
            _json_ready(dict(side.metadata), f"{side.name} metadata")
    if baseline is not None and not set(results.games) & set(baseline.games):
        raise ValueError(f"{results.name} and baseline {baseline.name} have no game in common")
    _check_destination(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    agent = summarize(results, bootstrap_reps, seed, confidence)
    base = summarize(baseline, bootstrap_reps, seed, confidence) if baseline is not None else None
    report = {
        "format": REPORT_FORMAT,
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "settings": settings_json,
        "versions": package_versions(),
        "protocol": protocol(bootstrap_reps, seed, confidence),
        "results": agent,
        "baseline": base,
        "comparison": compare(agent, base, bootstrap_reps, seed, confidence) if base is not None else None,
        "note": note,
        "sections": {title: _json_ready(data, title) for title, (_, data) in (sections or {}).items()},
    }
    summaries = [agent] + ([base] if base is not None else [])

    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    tmp_dir.chmod(0o755)  # mkdtemp makes it private (0700); a report is meant to be read by others
    try:
        (tmp_dir / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
        extra = [line for title, (lines, _) in (sections or {}).items() for line in (f"## {title}", "", *lines, "")]
        (tmp_dir / "report.md").write_text(render_markdown(report) + ("\n" + "\n".join(extra) if extra else ""))
        plot_raw_returns(summaries, tmp_dir / PNG_FILES[0])
        plot_normalized_scores(summaries, tmp_dir / PNG_FILES[1])
        plot_aggregates(summaries, tmp_dir / PNG_FILES[2])
        if (out_dir / EPISODES_NAME).is_file():
            shutil.copy2(out_dir / EPISODES_NAME, tmp_dir / EPISODES_NAME)
        _publish(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return out_dir


def load_report(out_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(out_dir) / "report.json").read_text())


# ---------------------------------------------------------------- video


def write_video(frames: np.ndarray, path: str | Path, fps: int = 15, scale: int = 1) -> Path:
    """Write uint8 frames [n, H, W] (gray) or [n, H, W, 3] (RGB) as .gif or .mp4; `scale` repeats pixels.

    GIF uses imageio (or Pillow if imageio is missing); MP4 needs imageio with the imageio-ffmpeg plugin.
    The file is written to a temporary name and renamed.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim not in (3, 4) or (frames.ndim == 4 and frames.shape[-1] != 3):
        raise ValueError(f"frames must be uint8 [n,H,W] or [n,H,W,3], got {frames.dtype} {frames.shape}")
    if frames.shape[0] == 0:
        raise ValueError("No frames to write")
    if scale < 1 or fps < 1:
        raise ValueError(f"scale and fps must be >= 1, got scale={scale}, fps={fps}")
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"Unsupported video format {path.suffix!r}; use .gif or .mp4")
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{suffix}")
    try:
        _write_frames(frames, tmp, suffix, fps)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_frames(frames: np.ndarray, path: Path, suffix: str, fps: int) -> None:
    try:
        import imageio.v3 as iio
    except ImportError:
        iio = None
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401  (the plugin imageio needs for MP4)
        except ImportError:
            iio = None
        if iio is None:
            raise RuntimeError("Writing .mp4 needs `pip install imageio imageio-ffmpeg`; or write a .gif")
        iio.imwrite(path, frames, fps=fps, macro_block_size=1)
    elif iio is not None:
        iio.imwrite(path, frames, extension=".gif", duration=1000 / fps, loop=0)
    else:
        try:
            from PIL import Image
        except ImportError as err:
            raise RuntimeError("Writing a .gif needs imageio or Pillow (`pip install imageio`)") from err
        images = [Image.fromarray(frame) for frame in frames]
        images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=1000 / fps, loop=0)
