"""A behaviour run's learning curve: per-episode returns and steps/s, its JSON file, PNG and summary.

`learning_curve.json` beside `replay_logs/` holds, for every logged episode, the agent step and training
wall time at which it ended, its raw return, length, how it ended and its non-zero raw rewards with the
step each came at; and, at every commit, the agent step, wall time and agent steps/s.
`behaviour_summary(run_dir)` reads the file back; `capped_data_mean(run_dir, cap)` is the data's mean
return under an evaluation's step cap (an evaluation that stops episodes at 500 steps cannot be held
against whole episodes of 1,500).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jowa.atomic import atomic_file, write_json

CURVE_NAME = "learning_curve.json"
PLOT_NAME = "learning_curve.png"
FINAL_FRACTION = 0.1  # "final" return: the mean over the last 10 % of logged episodes


@dataclass
class Curve:
    episodes: dict[str, list] = field(default_factory=lambda: {k: [] for k in ("agent_step", "wall_seconds",
                                                                              "return", "length", "end", "rewards")})
    progress: dict[str, list] = field(default_factory=lambda: {k: [] for k in ("agent_step", "wall_seconds",
                                                                              "steps_per_second")})

    def __post_init__(self) -> None:  # a run resumed from a state written before rewards were recorded
        self.episodes.setdefault("rewards", [None] * len(self.episodes["return"]))

    def add_episode(self, agent_step: int, wall: float, rewards: np.ndarray, end: str) -> None:
        """One episode from its raw per-step rewards (its length is theirs: one reward per agent step)."""
        rewards = np.asarray(rewards, dtype=float)
        steps = np.flatnonzero(rewards)
        values = (agent_step, round(wall, 2), float(rewards.sum()), len(rewards), end,
                  [[int(t), float(rewards[t])] for t in steps])
        for key, value in zip(self.episodes, values, strict=True):
            self.episodes[key].append(value)

    def add_progress(self, agent_step: int, wall: float, steps_per_second: float) -> None:
        for key, value in zip(self.progress, (agent_step, round(wall, 2), round(steps_per_second, 1))):
            self.progress[key].append(value)

    def scored_returns(self) -> list[float]:
        """Returns of the episodes that ended in the game (not the one cut at the transition budget)."""
        return [r for r, e in zip(self.episodes["return"], self.episodes["end"]) if e != "budget_cut"]

    def capped_returns(self, cap: int) -> list[float] | None:
        """The scored episodes' returns over their first `cap` agent steps; None for a curve written before
        rewards were recorded."""
        rewards = self.episodes["rewards"]
        if any(pairs is None for pairs in rewards):
            return None
        return [sum(r for t, r in pairs if t < cap) for pairs, e in zip(rewards, self.episodes["end"])
                if e != "budget_cut"]


@dataclass(frozen=True)
class BehaviourSummary:
    """What an evaluation report shows of a behaviour agent (returns are raw game scores)."""

    game: str
    agent: str
    final_mean_return: float | None  # last 10 % of logged episodes (at least one)
    data_mean_return: float | None  # all logged episodes
    episodes: int
    transitions: int
    agent_steps: int
    wall_seconds: float
    steps_per_second: float | None  # agent steps / training wall time


def summarize(curve: Curve, game: str, agent: str, agent_steps: int, wall: float) -> BehaviourSummary:
    returns = curve.scored_returns()
    tail = returns[-max(1, int(np.ceil(FINAL_FRACTION * len(returns)))):] if returns else []
    return BehaviourSummary(
        game=game, agent=agent,
        final_mean_return=float(np.mean(tail)) if tail else None,
        data_mean_return=float(np.mean(returns)) if returns else None,
        episodes=len(curve.episodes["return"]), transitions=int(sum(curve.episodes["length"])),
        agent_steps=agent_steps, wall_seconds=round(wall, 2),
        steps_per_second=round(agent_steps / wall, 1) if wall > 0 else None,
    )


def write_curve(run_dir: Path, curve: Curve, summary: BehaviourSummary, meta: dict) -> None:
    write_json(run_dir / CURVE_NAME, {**meta, "summary": summary.__dict__, "episodes": curve.episodes,
                                      "progress": curve.progress})


def behaviour_summary(run_dir: str | Path) -> BehaviourSummary:
    """The learning-curve summary of a behaviour run `{out}/{Game}/{run}` (final and data mean return)."""
    path = Path(run_dir) / CURVE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {CURVE_NAME}; not a behaviour run")
    return BehaviourSummary(**json.loads(path.read_text())["summary"])


def capped_data_mean(run_dir: str | Path, cap: int) -> float | None:
    """The mean return of a behaviour run's data over each episode's first `cap` agent steps (None when its
    curve predates reward recording or holds no scored episode)."""
    path = Path(run_dir) / CURVE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {CURVE_NAME}; not a behaviour run")
    returns = Curve(episodes=json.loads(path.read_text())["episodes"]).capped_returns(cap)
    return float(np.mean(returns)) if returns else None


def plot_curve(run_dir: Path, curve: Curve, title: str) -> None:
    """Episode return against agent step and against wall time, with a 20-episode running mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    returns = np.asarray(curve.episodes["return"], dtype=float)
    window = max(1, min(20, len(returns)))
    smooth = np.convolve(returns, np.ones(window) / window, mode="valid") if len(returns) else returns
    for ax, key, label in ((axes[0], "agent_step", "agent steps"), (axes[1], "wall_seconds", "wall seconds")):
        x = np.asarray(curve.episodes[key], dtype=float)
        ax.plot(x, returns, ".", alpha=0.3, label="episode")
        ax.plot(x[window - 1:], smooth, "-", label=f"mean of {window}")
        ax.set_xlabel(label)
        ax.set_ylabel("return")
    axes[0].legend(loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_file(run_dir / PLOT_NAME) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
