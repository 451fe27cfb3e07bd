"""Collect Atari transitions into DQN-Replay files (Dopamine layout), with a fixed policy or a learning agent:

    python data/atari/collect.py --games Pong,Breakout --transitions 50000 --out data/atari/replay
    python data/atari/collect.py --agent dqn-nstep --games Seaquest,Assault --seeds 1,2 --transitions 1000000 \
        --minutes 20 --out data/atari/replay

Both write {out}/{Game}/{run}/replay_logs/$store$_*_ckpt.N.gz (+ add_count, invalid_range). A policy run
adds collect.json; an agent run (one run per seed, named by the seed) trains the agent from scratch while
logging every transition it takes, and adds learning_curve.json/.png, agent/*.zip checkpoints and the
state.json that lets a rerun of the same command continue after a crash. Read either with
jowa.data.replay.read_episodes. Bad input exits with status 2 before any work starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from jowa.data.collect import collect  # noqa: E402
from jowa.envs.atari import DOPAMINE_MAX_EPISODE_STEPS  # noqa: E402


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", required=True, help="comma-separated catalogue names, e.g. Pong,Breakout")
    parser.add_argument("--transitions", type=int, required=True, help="real transitions per game")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--policy", default=None,
                        help="'random' (default), 'behaviour:RUN_DIR' or 'package.module:factory' (factory(seed=))")
    parser.add_argument("--agent", default=None,
                        help="train this agent and log its play instead (dqn-nstep, dqn, ppo or ppo-nature)")
    parser.add_argument("--seeds", default="1", help="agent runs: comma-separated seeds, one run (named by it) each")
    parser.add_argument("--minutes", type=float, default=None, help="agent runs: training wall-time limit per run")
    parser.add_argument("--num-envs", type=int, default=None, help="agent runs: envs the agent steps (default 8)")
    parser.add_argument("--device", default="auto", help="agent runs: torch device (auto = GPU when there is one)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--parallel", type=int, default=1,
                        help="agent runs: train this many at a time, one torch thread each (e.g. 2 on 2 cores; a 10-step DQN run needs ~12 GB of memory)")
    parser.add_argument("--commit-seconds", type=float, default=60.0, help="agent runs: seconds between commits")
    parser.add_argument("--envs-per-game", type=int, default=1)
    parser.add_argument("--run", default="1", help="run directory name under each game")
    parser.add_argument("--capacity", type=int, default=1_000_000, help="replay buffer rows per chunk")
    parser.add_argument("--sticky", type=float, default=0.25, help="sticky-action probability")
    parser.add_argument("--seed", type=int, default=0, help="policy runs: seed")
    parser.add_argument("--max-episode-steps", type=int, default=DOPAMINE_MAX_EPISODE_STEPS)
    parser.add_argument("--sync", action="store_true", help="step all envs in this process")
    parser.add_argument("--compresslevel", type=int, default=6, help="gzip level (Dopamine: 9, ~4x slower)")
    args = parser.parse_args(argv)
    args.error = parser.error
    if args.agent is not None and args.policy is not None:
        parser.error("--agent and --policy exclude each other: an agent run plays its own learning policy")
    if args.parallel < 1:
        parser.error(f"--parallel must be at least 1, got {args.parallel}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    games = [g.strip() for g in args.games.split(",") if g.strip()]
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.agent is not None:
        _train_agents(args, games)
        return
    try:
        stats = collect(
            games, args.transitions, args.out, policy=args.policy or "random", envs_per_game=args.envs_per_game,
            run=args.run, capacity=args.capacity, sticky=args.sticky, seed=args.seed,
            max_episode_steps=args.max_episode_steps, asynchronous=False if args.sync else None,
            compresslevel=args.compresslevel,
        )
    except (ValueError, FileExistsError) as exc:  # bad games, sizes or an occupied output: say so, no traceback
        args.error(str(exc))
    print(f"{'game':<16}{'transitions':>12}{'episodes':>10}{'game overs':>12}{'mean return':>13}")
    for game, s in stats.items():
        mean = f"{sum(s.returns) / len(s.returns):.1f}" if s.returns else "-"
        print(f"{game:<16}{s.transitions:>12}{s.episodes:>10}{s.game_overs:>12}{mean:>13}")
    print(f"wrote {args.out}")


def _train_agents(args: argparse.Namespace, games: list[str]) -> None:
    from jowa.behaviour.runs import collect_behaviour, plan_behaviour_runs

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        plans = plan_behaviour_runs(
            games, seeds, args.transitions, args.out, agent=args.agent, wall_minutes=args.minutes,
            num_envs=args.num_envs, sticky=args.sticky, max_episode_steps=args.max_episode_steps,
            capacity=args.capacity, compresslevel=args.compresslevel,
        )
    except ValueError as exc:  # unknown agent or game, bad sizes, a run with other settings in --out
        args.error(str(exc))
    summaries = collect_behaviour(plans, args.out, device=args.device, commit_seconds=args.commit_seconds,
                                  parallel=args.parallel)
    print(f"{'game':<16}{'run':>4}{'transitions':>12}{'episodes':>10}{'agent steps':>12}{'steps/s':>9}"
          f"{'final return':>14}{'data return':>13}")
    for (game, run), s in summaries.items():
        final = "-" if s.final_mean_return is None else f"{s.final_mean_return:.1f}"
        data = "-" if s.data_mean_return is None else f"{s.data_mean_return:.1f}"
        print(f"{game:<16}{run:>4}{s.transitions:>12}{s.episodes:>10}{s.agent_steps:>12}{s.steps_per_second or 0:>9.0f}"
              f"{final:>14}{data:>13}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
