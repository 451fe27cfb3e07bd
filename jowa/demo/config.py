"""The demo's settings: which games, how much data, how long each stage trains, how it is evaluated.

`configs/demo.yaml` holds the default (13-17 minutes on 2 CPU cores); `key=value` overrides
go through `jowa.config.apply_overrides`, e.g. `collect.transitions=2000 evaluation.episodes=2`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jowa.config import CONFIG_DIR, apply_overrides, load_yaml
from jowa.evaluation.config import EvalConfig
from jowa.games import check_game


@dataclass
class CollectSettings:
    transitions: int = 6000  # per pretraining game
    held_out_transitions: int = 5000  # the held-out game: exactly what fine-tuning uses
    sticky: float = 0.25  # sticky-action probability of the random behaviour policy
    seed: int = 0


@dataclass
class PretrainSettings:
    size: str = "tiny"
    overrides: list[str] = field(default_factory=list)  # pretrain.py key=value overrides


@dataclass
class FinetuneSettings:
    transitions: int = 5000
    overrides: list[str] = field(default_factory=list)  # finetune.py key=value overrides


@dataclass
class DemoConfig:
    games: list[str] = field(default_factory=lambda: ["Breakout", "SpaceInvaders", "Assault"])  # pretraining
    held_out: str = "Pong"  # never seen in pretraining; fine-tuned on
    collect: CollectSettings = field(default_factory=CollectSettings)
    pretrain: PretrainSettings = field(default_factory=PretrainSettings)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    # per game and policy; H of the planning evaluation (the greedy one has H = 0); the jowa protocol capped for time;
    # a GIF of each game's first planned episode
    evaluation: EvalConfig = field(default_factory=lambda: EvalConfig(episodes=3, horizon=1, max_episode_steps=300,
                                                                      video_frames=150))
    seed: int = 0

    @property
    def all_games(self) -> list[str]:
        return [*self.games, self.held_out]


def load_demo(path: str | Path = CONFIG_DIR / "demo.yaml", overrides: list[str] | None = None) -> DemoConfig:
    """The YAML file with overrides applied, checked before any work starts."""
    try:
        config = apply_overrides(load_yaml(DemoConfig, path), overrides or [])
    except (KeyError, TypeError) as error:
        raise ValueError(f"demo configuration: {error}") from error
    config.games = [check_game(g) for g in config.games]
    config.held_out = check_game(config.held_out)
    if not config.games:
        raise ValueError("demo configuration: no pretraining games")
    if config.held_out in config.games:
        raise ValueError(f"demo configuration: the held-out game {config.held_out} is also a pretraining game")
    if config.finetune.transitions > config.collect.held_out_transitions:
        raise ValueError(f"demo configuration: fine-tuning on {config.finetune.transitions} transitions needs at "
                         f"least that many collected (collect.held_out_transitions={config.collect.held_out_transitions})")
    e = config.evaluation
    if e.max_episode_steps is None or min(e.episodes, e.max_episode_steps, e.num_envs, e.beam_width, e.horizon,
                                          e.context) < 1:
        raise ValueError("demo configuration: evaluation episodes, max_episode_steps, num_envs, beam_width, horizon "
                         "and context must be >= 1")
    return config
