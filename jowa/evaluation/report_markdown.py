"""report.md: the protocol, per-game and aggregate tables, and the comparison with a baseline, from a
report dict (as report.json holds it)."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from jowa.evaluation.metrics import REFERENCES
from jowa.evaluation.report_numbers import NO_DQN, NO_HUMAN, NO_REFERENCES, REFERENCE_LABEL, reference_key


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
        key = reference_key(reference)
        if not any(s["aggregates"]["games"][key] for s in summaries):
            continue
        label = REFERENCE_LABEL[reference]
        counts = [str(len(s["aggregates"]["games"][key])) for s in summaries]
        lines.append(f"| Games in the {label} aggregates | " + " | ".join(counts) + " |")
        for row_label, cell in _aggregate_rows(key, label, pct):
            cells = ["n/a" if s["aggregates"]["paper"][key] is None else cell(s["aggregates"]) for s in summaries]
            lines.append(f"| {row_label} | " + " | ".join(cells) + " |")
    return lines


def _exclusion_lines(summaries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Bullets naming the games left out of the aggregates, over all sides of the report, and why."""
    out = {key: {g for s in summaries for g in s["aggregates"]["excluded"][key]} for key in ("hns", "dns")}
    groups = ((sorted(out["hns"] & out["dns"]), "the HNS and DNS aggregates", NO_REFERENCES),
              (sorted(out["dns"] - out["hns"]), "the DNS aggregates only", NO_DQN),
              (sorted(out["hns"] - out["dns"]), "the HNS aggregates only", NO_HUMAN))
    lines = []
    for games, where, why in groups:
        if games:
            lines.append(f"- {', '.join(games)}: left out of {where} ({why}).")
    return lines


def _aggregate_section(summaries: Sequence[Mapping[str, Any]], confidence: float) -> list[str]:
    if not any(s["aggregates"]["games"][reference_key(r)] for s in summaries for r in REFERENCES):
        return ["No evaluated game has reference scores, so there is no normalised aggregate (no HNS/DNS IQM, "
                "median, mean or # games above a reference); the raw returns per game are the result.", ""]
    lines = [*_aggregate_table(summaries, confidence), ""]
    for reference in REFERENCES:
        if not any(s["aggregates"]["games"][reference_key(reference)] for s in summaries):
            lines += [f"No evaluated game has a {'DQN' if reference == 'dqn' else 'human'} reference score, so "
                      f"there is no {REFERENCE_LABEL[reference]} aggregate.", ""]
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
