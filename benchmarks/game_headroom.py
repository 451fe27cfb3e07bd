"""Which games can an agent win at the study's evaluation? Random play beside every constant action, under the
study's protocol and step cap, side by side in one run.

    python benchmarks/game_headroom.py --games Seaquest,Breakout,Phoenix [--episodes 32] [--cap 500]

The study's first criterion asks planning to beat random by more than two standard errors; where random play's
spread is wide at the cap (Seaquest: 79 ± 51 per episode at 500 steps, eleventh session) no agent the data
can teach clears it, and where one action held down does (DemonAttack: FIRE), an agent that has learned one
thing from the screen can. For each game: random play's mean ± 95 % interval, the best constant action's, how
many of the valid constant actions beat random by more than two standard errors (Welch), and the bar a
deterministic agent (no spread of its own) must pass: random's mean + 2 SE. Sticky actions 0.25 (the standard
protocol, as the study plays). ALE only, no model: a few minutes for a dozen games on one core.
A game-selection experiment, not a speed benchmark: run_all.py does not run it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402

from benchmarks.common import Table, cpu_label, progress  # noqa: E402
from jowa.demo.report import clearly_higher  # noqa: E402
from jowa.evaluation.protocols import Protocol  # noqa: E402
from jowa.evaluation.rollouts import RandomActor, play  # noqa: E402
from jowa.games import FULL_ACTIONS, check_game, minimal_to_full  # noqa: E402
from jowa.study.results import stats  # noqa: E402


class ConstantActor:
    """Holds one full-set action down in every slot (jowa.evaluation.rollouts' Actor interface)."""

    def __init__(self, action: int) -> None:
        self.action = action

    def act(self, frames: np.ndarray, slots: list[int]) -> np.ndarray:
        return np.full(len(slots), self.action, dtype=np.int64)

    def reset(self, slots: list[int]) -> None:
        pass


def episode_returns(game: str, action: int | None, episodes: int, cap: int, sticky: float, seed: int) -> np.ndarray:
    """`episodes` returns of a constant full-set `action`, or of random play (None), all envs stepped together."""
    protocol = Protocol("headroom", sticky=sticky, epsilon=0.0, max_episode_steps=cap,
                        description="the study's sticky actions and cap; no ε (the actors are the policies)")
    actor = (lambda games: RandomActor(games, seed)) if action is None else (lambda games: ConstantActor(action))
    result = play([game], episodes, protocol, num_envs=episodes, make_actor=actor, seed=seed, progress=False)
    return np.asarray(result.returns[game])


def game_row(game: str, episodes: int, cap: int, sticky: float, seed: int) -> dict:
    random = episode_returns(game, None, episodes, cap, sticky, seed)
    constant = {a: episode_returns(game, a, episodes, cap, sticky, seed) for a in minimal_to_full(game)}
    best = max(constant, key=lambda a: constant[a].mean())
    return {"game": game, "random": random, "best": best, "best_returns": constant[best],
            "winning": [a for a, r in constant.items() if clearly_higher(r, random)], "actions": len(constant),
            "bar": random.mean() + 2 * stats(random)["se"]}


def interval(returns: np.ndarray) -> str:
    s = stats(returns)
    return f"{s['mean']:,.1f} ± {s['ci95'][1] - s['mean']:,.1f}"


def table(rows: list[dict], episodes: int, cap: int, sticky: float, minutes: float) -> Table:
    t = Table(f"Game headroom at a {cap}-step cap ({episodes} episodes per policy, sticky {sticky})",
              ["game", "random", "best constant action", "its return", "constant actions > random (2 SE)",
               "bar for a deterministic agent"],
              notes=f"{cpu_label()}, {minutes:.1f} min. ± is the 95 % Student-t interval of the mean; the bar is "
                    "random's mean + 2 SE (an agent whose episodes all score the same must pass it).")
    for r in rows:
        winning = ", ".join(FULL_ACTIONS[a] for a in r["winning"]) or "none"
        t.add(r["game"], interval(r["random"]), FULL_ACTIONS[r["best"]], interval(r["best_returns"]),
              f"{len(r['winning'])} of {r['actions']} ({winning})", f"{r['bar']:,.1f}")
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", required=True, help="comma-separated game names")
    parser.add_argument("--episodes", type=int, default=32, help="per policy and game")
    parser.add_argument("--cap", type=int, default=500, help="agent steps per episode (the study's cap)")
    parser.add_argument("--sticky", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.episodes < 2 or args.cap < 1:
        parser.error("--episodes must be >= 2 (a standard error) and --cap >= 1")
    try:
        games = [check_game(g) for g in args.games.split(",")]
    except ValueError as error:
        parser.error(str(error))
    started, rows = time.perf_counter(), []
    for game in games:
        progress(f"{game}: random and {len(minimal_to_full(game))} constant actions")
        rows.append(game_row(game, args.episodes, args.cap, args.sticky, args.seed))
    print(table(rows, args.episodes, args.cap, args.sticky, (time.perf_counter() - started) / 60).to_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
