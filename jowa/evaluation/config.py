"""One evaluation config: what `plan.py`'s flags, fine-tuning's evaluations, the demo and the study each set.

A YAML section of these keys, read by the strict loader (jowa.config: unknown keys and wrong types fail):

    episodes: 16            # per game
    protocol: jowa          # jowa (the paper's) or standard (sticky actions), jowa.evaluation.protocols
    planner: beam           # beam, greedy or mcts (jowa.planning.registry.PLANNERS)
    horizon: 2              # H of the planner; 0 = greedy on Q
    beam_width: 2           # K of the beam search
    return_lambda: 1.0      # beam search's λ-return score (ours; 1 = the official score, 0 = greedy's)
    simulations: null       # MCTS simulations per decision (null: 20, the official script's)
    context: 6              # blocks of real history the agent keeps
    num_envs: 16            # environments played at once
    max_episode_steps: null # a cap below the protocol's (null: the protocol's)
    seed: 0
    settings: null          # a per-game table (configs/eval/<name>.yaml, or a path) that sets H and each
                            # game's context and K, e.g. jowa_150M: the paper's
    video_frames: 0         # GIF of each game's first episode, this many frames; 0 = none

`resolve(config, games)` checks it against the games and the model's limits and gives the runner's
`EvaluationSettings` (per-game context and K, the protocol object).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jowa.config import CONFIG_DIR

if TYPE_CHECKING:
    from jowa.evaluation.runner import EvaluationSettings


@dataclass
class EvalConfig:
    episodes: int = 16
    protocol: str = "jowa"
    planner: str = "beam"
    horizon: int = 2  # 0 = greedy
    beam_width: int = 2
    return_lambda: float = 1.0
    simulations: int | None = None
    context: int = 6
    num_envs: int = 16
    max_episode_steps: int | None = None
    seed: int = 0
    settings: str | None = None
    video_frames: int = 0


def settings_path(settings: str | None) -> Path | None:
    """A per-game table by name (configs/eval/<name>.yaml) or by path."""
    if settings is None:
        return None
    named = CONFIG_DIR / "eval" / f"{settings}.yaml"
    return named if named.is_file() else Path(settings)


def resolve(config: EvalConfig, games: list[str]) -> EvaluationSettings:
    """The checked settings for `games` (fails early, naming what is wrong)."""
    from jowa.evaluation.runner import resolve_settings  # the runner needs torch; the config does not

    return resolve_settings(
        games, config.episodes, config.protocol, config.beam_width, config.horizon, config.context,
        config.num_envs, greedy=config.horizon == 0, settings_file=settings_path(config.settings), seed=config.seed,
        max_episode_steps=config.max_episode_steps, planner=config.planner, simulations=config.simulations,
        return_lambda=config.return_lambda,
    )
