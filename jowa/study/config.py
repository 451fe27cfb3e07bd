"""The study's settings: games, behaviour data, model sizes, fine-tuning and evaluation, per budget.

`configs/study/cpu.yaml` (≤ 2.5 h on 2 CPU cores) and `configs/study/gpu.yaml` (≤ 20 min on one GPU) hold
the budgets; `key=value` overrides go through `jowa.config.apply_overrides`, e.g.
`evaluation.episodes=4 behaviour.minutes=2`. Everything is checked here, before any work starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jowa.config import CONFIG_DIR, apply_overrides, load_size, load_yaml
from jowa.evaluation.config import EvalConfig
from jowa.games import check_game

STUDY_CONFIGS = CONFIG_DIR / "study"


@dataclass
class BehaviourSettings:
    """The learning agents that make the data (jowa.behaviour): one run per game, a fixed wall-clock budget."""

    agent: str = "dqn-nstep"
    minutes: float = 6.0  # training wall time per game
    transitions: int = 1_000_000  # cap on logged transitions per game
    seed: int = 1  # the run is named by it: {behaviour}/{Game}/{seed}
    sticky: float = 0.25
    settings: dict[str, Any] = field(default_factory=dict)  # the agent's settings overrides, e.g. {num_envs: 4}
    commit_seconds: float = 60.0  # how much a crash or a stop can lose
    device: str = "auto"
    parallel: int = 1  # runs trained at a time, one torch thread each (jowa.behaviour.runs)


@dataclass
class PretrainSettings:
    """One tokenizer and one tokenization shared by every size; a world-action model per size."""

    size: str = "tiny"  # the base preset every size overrides
    overrides: list[str] = field(default_factory=list)  # pretrain.py overrides shared by all stages and sizes
    # size name → its pretrain.py overrides on top (model.world_model.* and world.* keys only; first = smallest)
    sizes: dict[str, list[str]] = field(default_factory=lambda: {"tiny": []})
    transitions_per_game: int | None = None  # token shards: JOWA's subsample of each game's log (None: all)


@dataclass
class FinetuneSettings:
    """The held-out game: the largest model and one of the same size from scratch, same tokenizer and steps."""

    transitions: int = 5000
    select: str = "last-fraction=0.2"  # the paper's expert data: the last 20 % of the log
    config: str = "tiny"  # configs/finetune/<name>.yaml (both runs)
    overrides: list[str] = field(default_factory=list)  # finetune.py key=value overrides


@dataclass
class StudyConfig:
    budget: str = "cpu"  # what the budget is meant for, shown in RESULTS.md
    games: list[str] = field(default_factory=lambda: ["Seaquest", "DemonAttack", "Assault", "Atlantis"])
    held_out: str = "MsPacman"  # never seen in pretraining; fine-tuned on
    behaviour: BehaviourSettings = field(default_factory=BehaviourSettings)
    pretrain: PretrainSettings = field(default_factory=PretrainSettings)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    # per game and agent, sticky actions 0.25 and ε = 0.001, H of the planning agent (greedy: H = 0)
    evaluation: EvalConfig = field(default_factory=lambda: EvalConfig(episodes=8, protocol="standard", horizon=1,
                                                                      max_episode_steps=1000))
    estimated_minutes: dict[str, float] = field(default_factory=dict)  # per stage group, shown beside the actual
    device: str = "auto"  # training and evaluation: auto = the GPU when there is one
    seed: int = 0

    @property
    def all_games(self) -> list[str]:
        return [*self.games, self.held_out]

    @property
    def main_size(self) -> str:
        """The largest size (the last listed): the study's headline agent, and the one fine-tuned."""
        return list(self.pretrain.sizes)[-1]


def budget_path(budget: str | Path) -> Path:
    """configs/study/<budget>.yaml for a name, else the path itself."""
    path = Path(budget)
    return path if path.suffix in (".yaml", ".yml") else STUDY_CONFIGS / f"{budget}.yaml"


def _fail(message: str) -> None:
    raise ValueError(f"study configuration: {message}")


def load_study(budget: str | Path = "cpu", overrides: list[str] | None = None) -> StudyConfig:
    """The budget's YAML with overrides applied, checked before any work starts."""
    from jowa.behaviour import agent_settings
    from jowa.evaluation.protocols import get_protocol
    from jowa.finetuning.config import load_finetune
    from jowa.finetuning.data import parse_selection
    from jowa.training.config import load_training, validate
    from jowa.training.pretrain import default_training, split_overrides

    try:
        config = apply_overrides(load_yaml(StudyConfig, budget_path(budget)), overrides or [])
    except (KeyError, TypeError) as error:
        raise ValueError(f"study configuration: {error.args[0] if error.args else error}") from error
    config.games = [check_game(g) for g in config.games]
    config.held_out = check_game(config.held_out)
    if len(config.games) < 1 or len(set(config.games)) != len(config.games):
        _fail(f"games must be distinct and non-empty, got {config.games}")
    if config.held_out in config.games:
        _fail(f"the held-out game {config.held_out} is also a pretraining game")
    b = config.behaviour
    if b.minutes <= 0 or b.transitions <= 0:
        _fail("behaviour.minutes and behaviour.transitions must be positive")
    if b.parallel < 1:
        _fail(f"behaviour.parallel must be at least 1, got {b.parallel}")
    try:
        agent_settings(b.agent, **b.settings)
    except TypeError as error:
        _fail(f"behaviour.settings: {error}")
    p = config.pretrain
    if not p.sizes:
        _fail("pretrain.sizes is empty")
    for name, extra in p.sizes.items():
        if not isinstance(extra, list) or not all(isinstance(o, str) for o in extra):
            _fail(f"pretrain.sizes.{name} must be a list of key=value overrides")
        bad = [o for o in extra if o.startswith("model.tokenizer.") or o.startswith("tokenizer.")]
        if bad:
            _fail(f"pretrain.sizes.{name}: {bad[0]!r}: every size shares one tokenizer; put tokenizer keys in "
                  "pretrain.overrides")
        model, training = split_overrides([*p.overrides, *extra])
        try:
            load_size(p.size, model)
            validate(apply_overrides(load_training(default_training(p.size)), training))
        except (KeyError, TypeError) as error:
            _fail(f"pretrain.sizes.{name}: {error.args[0] if error.args else error}")
    if p.transitions_per_game is not None and p.transitions_per_game <= 0:
        _fail("pretrain.transitions_per_game must be positive (or null: every transition)")
    f = config.finetune
    parse_selection(f.select)
    try:
        apply_overrides(load_finetune(f.config), f.overrides)
    except (KeyError, TypeError) as error:
        _fail(f"finetune.overrides: {error.args[0] if error.args else error}")
    if f.transitions <= 0 or f.transitions > b.transitions:
        _fail(f"finetune.transitions must be in [1, behaviour.transitions={b.transitions}]")
    e = config.evaluation
    get_protocol(e.protocol)
    if e.max_episode_steps is None or min(e.episodes, e.max_episode_steps, e.num_envs, e.beam_width, e.horizon,
                                          e.context) < 1:
        _fail("evaluation episodes, max_episode_steps, num_envs, beam_width, horizon and context must be >= 1")
    return config
