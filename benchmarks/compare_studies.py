"""Two or more finished studies side by side: their verdicts, returns, own-play action shares and the critic's
copy measures, read from each STUDY/results.json and its evaluation reports (nothing is played again).

    python benchmarks/compare_studies.py runs/study-a runs/study-b --names actions,random --out compare.md

The studies should differ in one setting (e.g. world stages rerun on the same tokens) for the table to say
what that setting does.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from benchmarks.study_models import report_returns  # noqa: E402

COPY_KEYS = ("greedy_matches_data", "greedy_follows_swap", "greedy_kept_under_swap")


def load(study: Path) -> dict[str, Any]:
    """STUDY/results.json, its report paths moved under `study` (a committed copy keeps eval/<name>/report.json)."""
    path = study / "results.json"
    if not path.exists():
        raise SystemExit(f"{study}: no results.json (is the study finished?)")
    results = json.loads(path.read_text())
    for stage in results["reports"].values():
        for agent, report in stage.items():
            stage[agent] = str(study / "eval" / Path(report).parent.name / "report.json")
    return results


def _cell(stats: dict[str, Any] | None) -> str:
    return "–" if not stats else f"{stats['mean']:.1f} ± {stats['se']:.1f}"


def _share(value: float | None) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.0f} %"


def verdicts(results: list[dict[str, Any]], names: list[str]) -> list[str]:
    """One row per criterion id of any study, in first-seen order; "–" where a study was judged without it."""
    lines = ["| criterion | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    by_id = [{c["id"]: c for c in r["criteria"]} for r in results]
    wording = {c["id"]: c["criterion"] for r in reversed(results) for c in r["criteria"]}
    for key in dict.fromkeys(c["id"] for r in results for c in r["criteria"]):
        cells = [_judged(found[key]) if key in found else "–" for found in by_id]
        lines.append(f"| {wording[key]} | " + " | ".join(cells) + " |")
    return lines


def _judged(criterion: dict[str, Any]) -> str:
    verdict = {True: "met", False: "not met", None: "not judged"}[criterion["passed"]]
    return f"{verdict}: {criterion['detail']}"


def returns(results: list[dict[str, Any]], names: list[str]) -> list[str]:
    """Mean ± SE of each size's planning and greedy agents per game, with the top action's share of own play."""
    lines = ["| game | size / agent | " + " | ".join(names) + " |", "| --- | --- |" + " ---: |" * len(names)]
    sizes, agents = results[0]["sizes"], ("plan", "greedy")
    played = [{(size, agent): report_returns(Path(r["reports"][f"evaluate:{size}"][agent]))
               for size in sizes for agent in agents} for r in results]  # each report read once
    for game in all_games(results):
        for size in sizes:
            for agent in agents:
                cells = []
                for r, tops in zip(results, played):
                    top = tops[(size, agent)].get(game)
                    cells.append("–" if top is None else f"{_cell(r['games'][game].get(f'{size}/{agent}'))} "
                                 f"({top['top_action']} {_share(top['top_action_share'])})")
                lines.append(f"| {game} | {size} / {agent} | " + " | ".join(cells) + " |")
        lines.append(f"| {game} | random | " + " | ".join(
            _cell(r["games"][game].get("random")) if game in r["games"] else "–" for r in results) + " |")
    return lines


def all_games(results: list[dict[str, Any]]) -> list[str]:
    """Every study's pretraining games in first-seen order (studies may differ in one game: "–" in its cells)."""
    return list(dict.fromkeys(g for r in results for g in r["config"]["games"]))


def copying(results: list[dict[str, Any]], names: list[str]) -> list[str]:
    """On the held episodes: greedy = data, greedy follows swapped context actions, keeps its choice."""
    lines = ["| game | size | " + " | ".join(f"{n}: greedy = data / follows swap / keeps" for n in names) + " |",
             "| --- | --- |" + " ---: |" * len(names)]
    for size in results[0]["sizes"]:
        rows = [{row["game"]: row for row in r["diagnostics"]["world"][size]} for r in results]
        for game in all_games(results):
            cells = [" / ".join(_share(by_game[game].get(k)) for k in COPY_KEYS) if game in by_game else "–"
                     for by_game in rows]
            lines.append(f"| {game} | {size} | " + " | ".join(cells) + " |")
    return lines


def heldout(results: list[dict[str, Any]], names: list[str]) -> list[str]:
    lines = ["| held-out agent | " + " | ".join(names) + " |", "| --- |" + " ---: |" * len(names)]
    for key in ("pretrained/plan", "pretrained/greedy", "scratch/plan", "scratch/greedy", "random"):
        lines.append(f"| {key} | " + " | ".join(_cell(r["heldout"].get(key)) for r in results) + " |")
    return lines


def markdown(studies: list[Path], names: list[str]) -> str:
    results = [load(s) for s in studies]
    header = ["Studies compared: " + ", ".join(f"{n} = `{s}`" for n, s in zip(names, studies)), ""]
    sections = [("Verdicts", verdicts), ("Returns (mean ± SE; the agent's most played action and its share)", returns),
                ("The critic on the held episodes", copying), ("Fine-tuning on the held-out game", heldout)]
    body = []
    for title, table in sections:
        body += [f"## {title}", "", *table(results, names), ""]
    return "\n".join(header + body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("studies", nargs="+", type=Path)
    parser.add_argument("--names", default=None, help="comma-separated column names (default: the directory names)")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown here")
    args = parser.parse_args()
    names = args.names.split(",") if args.names else [s.name for s in args.studies]
    if len(names) != len(args.studies):
        raise SystemExit(f"{len(names)} names for {len(args.studies)} studies")
    text = markdown(args.studies, names)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
