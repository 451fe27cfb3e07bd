"""Does the critic read the screen or copy the previous action of its context? A finished study's models
played with the study's context and with shorter ones, side by side in one run (docs/diagnosis.md
"The critic copies the previous action").

    python benchmarks/critic_context.py --study runs/study [--contexts 6,1] [--sizes nano,tiny] [--episodes 10]

The context's action tokens are the data's in training and on the held episodes, the agent's own in its
episodes; a critic that names the previous action agrees with the data as often as the data repeat themselves
and, in its own episodes, plays whatever it played first. With a context of one block the window holds the
current frame and no action at all (the o^35 Q of a segment's first step, which training fits as well).
For each size and context, on the study's other evaluation settings (games, protocol, cap, K, H, seed):
1. the held episodes (jowa.diagnostics.report_rows.world_rows): the copy measures (greedy under the context's
   actions swapped) and the one-step search on logged states with this memory;
2. returns and the most played action's share, greedy and planning. The study's own context reads the
   study's own evaluation reports (same settings and seed) instead of playing them again.
Results: STUDY/critic_context/results.json, the new evaluations' reports beside it, a markdown table on stdout.
A learning experiment, not a speed benchmark: run_all.py does not run it.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from benchmarks.common import cpu_label  # noqa: E402
from benchmarks.study_models import played, report_returns, study_record, study_settings  # noqa: E402
from jowa.atomic import write_json  # noqa: E402
from jowa.evaluation.config import EvalConfig  # noqa: E402

HELD_KEYS = ("greedy_matches_data", "most_common_action_share", "data_repeats_previous", "greedy_follows_swap",
             "greedy_kept_under_swap", "plan_matches_greedy", "greedy_matches_data_here", "greedy_top_action_share_here")


def held_rows(study: Path, size: str, games: list[str], context: int, beam_width: int) -> dict[str, dict[str, float]]:
    """game → the critic's measures on the study's held episodes, the logged-state search with `context` blocks."""
    from jowa.diagnostics.report_rows import world_rows
    from jowa.model_files import find_model_dir

    rows = world_rows(find_model_dir(study / "models" / size, "world_model"), study / "tokens", games,
                      planning=(context, beam_width))
    return {r["game"]: {k: r[k] for k in HELD_KEYS if k in r} for r in rows}


def returns_at(study: Path, size: str, games: list[str], settings: EvalConfig, context: int, out: Path,
               reuse: bool) -> dict[str, Any]:
    """{"greedy": ..., "plan": ...} game → mean return and top action share, with `context` blocks (`reuse`: the
    study's own reports stand for its own context)."""
    result, own = {}, reuse and context == settings.context
    for mode, horizon in (("plan", settings.horizon), ("greedy", 0)):
        if own and (study / "eval" / f"{size}_{mode}" / "report.json").is_file():
            result[mode] = report_returns(study / "eval" / f"{size}_{mode}" / "report.json")
        else:
            changed = replace(settings, context=context, horizon=horizon)
            result[mode] = played(study / "models" / size, games, changed, out / f"{size}_context{context}_{mode}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", type=Path, required=True, help="a finished study's output directory")
    parser.add_argument("--contexts", default="6,1", help="blocks of real history in the agent's memory")
    parser.add_argument("--sizes", help="comma-separated (default: the study's sizes)")
    parser.add_argument("--episodes", type=int, help="per game (default: the study's)")
    args = parser.parse_args(argv)
    record = study_record(args.study)
    games, settings = record["games"], study_settings(record, args.episodes)
    reuse = args.episodes in (None, record["evaluation"]["episodes"])  # the study's reports hold its episodes
    contexts = [int(x) for x in args.contexts.split(",")]
    sizes = args.sizes.split(",") if args.sizes else list(record["pretrain"]["sizes"])
    out_dir = args.study / "critic_context"
    results: dict[str, Any] = {"machine": f"{cpu_label()}, {torch.get_num_threads()} threads",
                               "study_context": record["evaluation"]["context"], "sizes": {}}
    started = time.perf_counter()
    for size in sizes:
        results["sizes"][size] = {}
        for context in contexts:
            results["sizes"][size][str(context)] = {
                "held": held_rows(args.study, size, games, context, settings.beam_width),
                "returns": returns_at(args.study, size, games, settings, context, out_dir, reuse)}
            write_json(out_dir / "results.json", results)  # each setting as it finishes
    results["minutes"] = round((time.perf_counter() - started) / 60, 1)
    write_json(out_dir / "results.json", results)
    print(markdown(results, games))
    return 0


def markdown(results: dict[str, Any], games: list[str]) -> str:
    pct = lambda x: "–" if x is None else f"{100 * x:.0f} %"  # noqa: E731
    lines = [f"Machine: {results['machine']}; {results.get('minutes', '?')} min.", "",
             "| size | context | game | held: greedy = data (data repeat) | held: greedy follows swap / keeps | "
             "greedy return (top action share) | planning return (top action share) |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for size, by_context in results["sizes"].items():
        for context, row in by_context.items():
            for game in games:
                h = row["held"].get(game, {})
                cells = []
                for mode in ("greedy", "plan"):
                    r = row["returns"][mode].get(game)
                    cells.append("–" if r is None else f"{r['mean']:,.1f} ({r['top_action']} {pct(r['top_action_share'])})")
                lines.append(f"| {size} | {context} | {game} | {pct(h.get('greedy_matches_data'))} "
                             f"({pct(h.get('data_repeats_previous'))}) | {pct(h.get('greedy_follows_swap'))} / "
                             f"{pct(h.get('greedy_kept_under_swap'))} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
