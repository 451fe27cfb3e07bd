"""Collect Atari transitions with a policy into DQN-Replay files (Dopamine layout), e.g.

    python data/atari/collect.py --games Pong,Breakout --transitions 50000 --out data/atari/replay

writes {out}/{Game}/{run}/replay_logs/$store$_*_ckpt.N.gz (+ add_count, invalid_range) and a collect.json
with the settings and per-game statistics. Read it back with jowa.data.replay.read_episodes.
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
    parser.add_argument("--policy", default="random", help="'random' or 'package.module:factory' (factory(seed=))")
    parser.add_argument("--envs-per-game", type=int, default=1)
    parser.add_argument("--run", default="1", help="run directory name under each game")
    parser.add_argument("--capacity", type=int, default=1_000_000, help="replay buffer rows per chunk")
    parser.add_argument("--sticky", type=float, default=0.25, help="sticky-action probability")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-episode-steps", type=int, default=DOPAMINE_MAX_EPISODE_STEPS)
    parser.add_argument("--sync", action="store_true", help="step all envs in this process")
    parser.add_argument("--compresslevel", type=int, default=6, help="gzip level (Dopamine: 9, ~4x slower)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    games = [g.strip() for g in args.games.split(",") if g.strip()]
    try:
        stats = collect(
            games, args.transitions, args.out, policy=args.policy, envs_per_game=args.envs_per_game, run=args.run,
            capacity=args.capacity, sticky=args.sticky, seed=args.seed, max_episode_steps=args.max_episode_steps,
            asynchronous=False if args.sync else None, compresslevel=args.compresslevel,
        )
    except (ValueError, FileExistsError) as exc:  # bad games, sizes or an occupied output: say so, no traceback
        raise SystemExit(f"error: {exc}") from None
    print(f"{'game':<16}{'transitions':>12}{'episodes':>10}{'game overs':>12}{'mean return':>13}")
    for game, s in stats.items():
        mean = f"{sum(s.returns) / len(s.returns):.1f}" if s.returns else "-"
        print(f"{game:<16}{s.transitions:>12}{s.episodes:>10}{s.game_overs:>12}{mean:>13}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
