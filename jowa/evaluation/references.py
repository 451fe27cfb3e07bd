"""Reference agents beside an evaluation: a behaviour agent (the learner that made the data) played under
the same protocol, shown per game next to the evaluated agent and the random policy.

`PolicyActor` puts any `jowa.envs.Policy` (e.g. `jowa.behaviour.BehaviourPolicy`) behind the rollout
`Actor` interface, one policy per slot so that a policy's frame stack follows its own environment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jowa.envs import valid_action_masks
from jowa.envs.policies import Policy
from jowa.games import check_game, task_id


class PolicyActor:
    def __init__(self, slot_games: list[str], make_policy: Callable[[str, int], Policy]) -> None:
        self.policies = [make_policy(game, slot) for slot, game in enumerate(slot_games)]
        self.tasks = np.array([task_id(g) for g in slot_games])
        self.masks = valid_action_masks(slot_games)  # [E, 18]
        self.fresh = np.ones(len(slot_games), dtype=bool)

    def act(self, frames: np.ndarray, slots: list[int]) -> np.ndarray:
        actions = np.empty(len(slots), dtype=np.int64)
        for i, slot in enumerate(slots):
            actions[i] = self.policies[slot](frames[i:i + 1], self.tasks[slot:slot + 1], self.masks[slot:slot + 1],
                                             self.fresh[slot:slot + 1])[0]
        self.fresh[slots] = False
        return actions

    def reset(self, slots: list[int]) -> None:
        self.fresh[slots] = True


def behaviour_run(root: str | Path, game: str) -> Path:
    """The behaviour run of `game` under `root` ({root}/{Game}/{run}, the first run), or a clear error."""
    game = check_game(game)
    runs = sorted(p for p in (Path(root) / game).glob("*") if (p / "state.json").is_file()) if Path(root).is_dir() else []
    if not runs:
        raise FileNotFoundError(f"no behaviour run of {game} under {root} (expected {root}/{game}/<run>/state.json; "
                                f"make one with data/atari/collect.py --agent)")
    return runs[0]


def behaviour_actor_factory(root: str | Path, seed: int) -> Callable[[list[str]], PolicyActor]:
    from jowa.behaviour import load_behaviour_policy

    def make(slot_games: list[str]) -> PolicyActor:
        return PolicyActor(slot_games, lambda game, slot: load_behaviour_policy(behaviour_run(root, game),
                                                                               seed=seed + slot))
    return make


def behaviour_notes(root: str | Path, games: list[str], cap: int) -> dict[str, dict[str, Any]]:
    """Per game, what the behaviour agent's own log says: its final and its data's mean return, and the
    data's mean return over each episode's first `cap` agent steps (the evaluation's cap: what an agent
    evaluated under it can be held against; None for a run logged before rewards were recorded)."""
    from jowa.behaviour import behaviour_summary, capped_data_mean

    notes = {}
    for game in games:
        run = behaviour_run(root, game)
        summary = behaviour_summary(run)
        notes[game] = {"final_mean_return": summary.final_mean_return, "data_mean_return": summary.data_mean_return,
                       "data_mean_return_capped": capped_data_mean(run, cap), "cap": cap,
                       "agent_steps": summary.agent_steps, "run": str(run)}
    return notes


def _mean_se(values: list[float]) -> str:
    if not values:
        return "–"
    se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return f"{np.mean(values):,.1f} ± {se:,.1f} ({len(values)})"


def reference_table(sides: Mapping[str, Mapping[str, list[float]]], notes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Markdown rows: per game, each side's mean return ± standard error (episodes), and the behaviour
    agent's logged returns (the mean of its last 10 % of training episodes, of all its data, and of its data
    cut at the evaluation's step cap)."""
    names = list(sides)
    games = sorted({g for returns in sides.values() for g in returns})
    cap = next((f"{n['cap']:,}" for n in notes.values() if "cap" in n), "capped")
    lines = ["| Game | " + " | ".join(names) + " | behaviour, end of training | behaviour's data | "
             f"behaviour's data, first {cap} steps |", "|---|" + "---:|" * (len(names) + 3)]
    for game in games:
        note = notes.get(game, {})
        logged = [note.get("final_mean_return"), note.get("data_mean_return"), note.get("data_mean_return_capped")]
        cells = [_mean_se(list(sides[n].get(game, []))) for n in names]
        cells += ["–" if v is None else f"{v:,.1f}" for v in logged]
        lines.append(f"| {game} | " + " | ".join(cells) + " |")
    return lines
