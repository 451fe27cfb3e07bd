"""Evaluate a trained JOWA run with planning (beam search, MCTS) or greedily, and write a report.

    python plan.py --run runs/tiny --games Pong,Breakout --episodes 16 -K 2 -H 2 --context 6 --protocol jowa --envs 16
    python plan.py --run runs/tiny --games Pong --planner mcts -H 6 --context 2 --simulations 20
    python plan.py --run runs/official-150M --games Assault,Seaquest --settings configs/eval/jowa_150M.yaml

Every episode is logged as it ends (OUT/episodes.jsonl): after SIGTERM or Ctrl-C a partial report is
written (exit status 3) and the same command continues where it stopped.

    accelerate launch --num_processes 8 plan.py --run runs/official-150M --games Assault,Seaquest --envs 1 …

splits the slot groups (up to --envs games each) across the processes, each on its own device; rank 0
writes the one report, the same as a single process's with the same settings.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from a checkout without installing

from jowa.evaluation.config import EvalConfig, resolve  # noqa: E402
from jowa.evaluation.processes import Processes, RankFailed, launched_processes  # noqa: E402
from jowa.evaluation.protocols import PROTOCOLS  # noqa: E402
from jowa.evaluation.runner import EvaluationStopped, evaluate_run  # noqa: E402
from jowa.model_files import CheckpointError  # noqa: E402
from jowa.planning.registry import PLANNERS  # noqa: E402
from jowa.training.distributed import pick_device  # noqa: E402


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="run directory (or a checkpoint inside it)")
    parser.add_argument("--games", required=True, help="comma-separated game names, e.g. Pong,Breakout")
    parser.add_argument("--episodes", type=int, default=16, help="episodes per game")
    parser.add_argument("--planner", choices=sorted(PLANNERS), default="beam",
                        help="beam search (default), greedy (as --greedy) or mcts (docs/official_jowa.md §7.4)")
    parser.add_argument("-K", "--beam-width", type=int, default=2)
    parser.add_argument("--simulations", type=int, help="MCTS simulations per decision (default 20, the official)")
    parser.add_argument("-H", "--horizon", type=int, default=2, help="0 = greedy (as --greedy)")
    parser.add_argument("--return-lambda", type=float, default=1.0,
                        help="beam search scores a λ-return of its path (ours): 1 = the official score, 0 = greedy's")
    parser.add_argument("--context", type=int, default=6, help="blocks of real history in the agent's memory")
    parser.add_argument("--greedy", action="store_true", help="no planning: argmax of Q")
    parser.add_argument("--settings", type=Path, help="per-game context/K table, e.g. configs/eval/jowa_150M.yaml")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="jowa")
    parser.add_argument("--max-steps", type=int, help="cap episodes at this many agent steps (overrides the protocol)")
    parser.add_argument("--envs", type=int, default=16, help="environments played at once")
    parser.add_argument("--random-baseline", action="store_true", help="also play a uniform random policy")
    parser.add_argument("--behaviour", type=Path,
                        help="behaviour runs ({DIR}/{Game}/{run}, collect.py --agent): play their agents as a reference")
    parser.add_argument("--video", action="store_true", help="write a GIF of each game's first episode")
    parser.add_argument("--video-frames", type=int, default=600)
    parser.add_argument("--out", type=Path, help="report directory (default: RUN/eval/<planner>)")
    parser.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, cuda, cuda:1, …")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    processes = launched_processes()
    status = 1
    try:
        status = _evaluate(args, processes)
    except RankFailed as error:  # another process failed: say so and end, not wait for it
        print(f"error: {error}", file=sys.stderr, flush=True)
    except BaseException as error:
        processes.fail(error)  # the others raise RankFailed at their next collective
        raise
    finally:
        processes.close(status)
    return status


def _evaluate(args: argparse.Namespace, processes: Processes) -> int:
    """One evaluation in this process (one of several under `accelerate launch`); the exit status."""
    try:
        config = EvalConfig(
            episodes=args.episodes, protocol=args.protocol, horizon=0 if args.greedy else args.horizon,
            planner="greedy" if args.greedy else args.planner, simulations=args.simulations,
            beam_width=args.beam_width, return_lambda=args.return_lambda, context=args.context, num_envs=args.envs,
            max_episode_steps=args.max_steps,
            seed=args.seed, settings=None if args.settings is None else str(args.settings),
            video_frames=args.video_frames if args.video else 0,
        )
        settings = resolve(config, args.games.split(","))
        names = {"greedy": "greedy", "mcts": f"mcts_H{settings.horizon}"}
        mixed = f"_lambda{settings.return_lambda:g}" if settings.return_lambda != 1.0 else ""
        name = names.get(settings.planner, f"plan_H{settings.horizon}{mixed}")
        out = args.out or args.run / "eval" / f"{name}_{args.protocol}"
        # Launched processes take the launcher's device (each its own GPU, or the CPU) unless one is named.
        launched = processes.device is not None and args.device == "auto"
        device = str(processes.device) if launched else str(pick_device(args.device, 0))
        out = evaluate_run(args.run, settings, out, device, args.random_baseline, config.video_frames,
                           behaviour=args.behaviour, progress=processes.main, processes=processes)
    except (ValueError, FileNotFoundError, FileExistsError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    except EvaluationStopped as error:
        print(f"stopped: {error}", file=sys.stderr, flush=True)
        return 3
    if processes.main:
        print(f"report: {out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
