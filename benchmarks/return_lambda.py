"""Does the λ-return score make the beam search follow its own critic? A finished study's models planned with
the official score (λ = 1) and mixed ones, side by side in one run (docs/diagnosis.md "A λ-return score").

    python benchmarks/return_lambda.py --study runs/study [--lambdas 1,0.5] [--sizes nano,tiny] [--episodes 10] [--seed 1]

For each size and λ, on the study's evaluation settings (its games, protocol, episode cap, context, K, H, seed):
1. logged states (jowa.diagnostics.planning, the study's held episodes): how often the K, H = 1 search plays
   greedy's action and the data's;
2. returns: the study's planning evaluation with `return_lambda = λ` (λ = 1 plays the study's own planning
   evaluation again, the check that the rest of the run is comparable).
Results: STUDY/return_lambda/results.json, the evaluations' reports beside it, and a markdown table on stdout.
A learning experiment, not a speed benchmark: run_all.py does not run it.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from benchmarks.common import cpu_label  # noqa: E402
from jowa.atomic import write_json  # noqa: E402
from benchmarks.study_models import played, study_record, study_settings  # noqa: E402
from jowa.evaluation.config import EvalConfig  # noqa: E402


def logged_state_rows(model_run: Path, tokens: Path, games: list[str], settings: EvalConfig,
                      lambdas: list[float]) -> dict[float, dict[str, dict[str, float]]]:
    """λ → game → planning_measures on the study's held episodes (the same windows for every λ)."""
    from jowa.config import CriticLossConfig
    from jowa.data.shards import resolve_shards
    from jowa.diagnostics.held import episode_windows, held_episodes
    from jowa.diagnostics.planning import planning_measures
    from jowa.diagnostics.report_rows import HELD_STEPS
    from jowa.model.world_model import WorldActionModel
    from jowa.model_files import find_model_dir

    model = WorldActionModel.from_pretrained(find_model_dir(model_run, "world_model")).eval()
    shards, gamma = resolve_shards(tokens), CriticLossConfig().gamma
    out: dict[float, dict[str, dict[str, float]]] = {lam: {} for lam in lambdas}
    for game in games:
        episodes = held_episodes([s for s in shards if game in s.games], HELD_STEPS)
        if not episodes:
            continue
        batch, _ = episode_windows(episodes, model.config.max_blocks, gamma)
        for lam in lambdas:
            out[lam][game] = planning_measures(model, batch, settings.context, settings.beam_width, gamma, lam)
    return out


def returns_of(model_run: Path, games: list[str], settings: EvalConfig, lam: float, out: Path) -> dict[str, float]:
    return {g: row["mean"] for g, row in played(model_run, games, replace(settings, return_lambda=lam), out).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", type=Path, required=True, help="a finished study's output directory")
    parser.add_argument("--lambdas", default="1,0.5")
    parser.add_argument("--sizes", help="comma-separated (default: the study's sizes)")
    parser.add_argument("--episodes", type=int, help="per game (default: the study's)")
    parser.add_argument("--seed", type=int,
                        help="evaluation seed (default: the study's): fresh episodes to check a λ chosen on the study's")
    args = parser.parse_args(argv)
    record = study_record(args.study)
    games, settings = record["games"], study_settings(record, args.episodes)
    if args.seed is not None:
        settings = replace(settings, seed=args.seed)
    if settings.horizon != 1:
        raise SystemExit("error: the logged-state measures are one-step (H = 1); "
                         f"the study planned with H = {settings.horizon}")
    lambdas = [float(x) for x in args.lambdas.split(",")]
    sizes = args.sizes.split(",") if args.sizes else list(record["pretrain"]["sizes"])
    out_dir = args.study / ("return_lambda" if args.seed is None else f"return_lambda_seed{args.seed}")
    results: dict[str, object] = {"machine": f"{cpu_label()}, {torch.get_num_threads()} threads",
                                  "seed": settings.seed, "sizes": {}}
    started = time.perf_counter()
    for size in sizes:
        run = args.study / "models" / size
        states = logged_state_rows(run, args.study / "tokens", games, settings, lambdas)
        played = {lam: returns_of(run, games, settings, lam, out_dir / f"{size}_lambda{lam:g}") for lam in lambdas}
        results["sizes"][size] = {f"{lam:g}": {"logged_states": states[lam], "returns": played[lam]} for lam in lambdas}
        write_json(out_dir / "results.json", results)  # each size as it finishes
    results["minutes"] = round((time.perf_counter() - started) / 60, 1)
    write_json(out_dir / "results.json", results)
    print(markdown(results, games))
    return 0


def markdown(results: dict, games: list[str]) -> str:
    lines = [f"Machine: {results['machine']}; {results.get('minutes', '?')} min.", "",
             "| size | λ | game | plan = greedy | plan = data | greedy = data | mean return |",
             "| --- | ---: | --- | ---: | ---: | ---: | ---: |"]
    for size, by_lambda in results["sizes"].items():
        for lam, row in by_lambda.items():
            for game in games:
                m = row["logged_states"].get(game, {})
                pct = lambda key: f"{100 * m[key]:.1f} %" if key in m else "–"  # noqa: E731
                ret = row["returns"].get(game)
                lines.append(f"| {size} | {lam} | {game} | {pct('plan_matches_greedy')} | {pct('plan_matches_data')} | "
                             f"{pct('greedy_matches_data_here')} | {'–' if ret is None else f'{ret:,.1f}'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
