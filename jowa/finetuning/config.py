"""Fine-tuning configuration (docs/official_jowa.md §9): data selection, what trains, the schedule, imagination, evaluation.

`configs/finetune/{tiny,official}.yaml` hold one `FinetuneConfig` each; `key=value` overrides go through
`jowa.config.apply_overrides`. The official values are the dataclass defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from jowa.config import CONFIG_DIR, CriticLossConfig, critic_loss_checks, load_yaml
from jowa.evaluation.config import EvalConfig
from jowa.training.config import SCHEDULES, CheckpointConfig, LoggingConfig

TRAIN_MODES: tuple[str, ...] = ("all", "freeze_backbone", "heads_and_task")
SELECTION = re.compile(r"^(first|last|random|last-fraction=(0?\.\d+|1(\.0*)?))$")


@dataclass
class FinetuneDataConfig:
    transitions: int = 5000  # exactly this many transitions of the new game
    # first | last | random | last-fraction=F (random whole episodes from the last F of the replay stream;
    # the paper's "expert" data came from late DQN-Replay, F = 0.2)
    select: str = "last-fraction=0.2"
    segment_length: int = 8
    stride: int = 1  # official fine-tuning segments: tau = 1
    tokenize_batch_frames: int = 1024


@dataclass
class TokenizerFinetuneConfig:
    train: bool = False  # official: True; here only when asked (frames are re-encoded every step then)
    lr: float = 1e-4  # AdamW group without weight decay = the official Adam
    frames: int = 128  # frames per step for the tokenizer loss


@dataclass
class ImaginationConfig:
    """Model-based data synthesis (docs/official_jowa.md §9.1), with the official off-by-one and scale bugs fixed."""

    enabled: bool = False  # official README command: on
    after: int = 20_000  # first step that mixes imagined segments in
    fraction: float = 0.5  # share of each batch taken from the imagination buffer
    beam_width: int = 2
    horizon: int = 2
    buffer_factor: int = 10  # FIFO capacity = buffer_factor × number of real segments
    seed_offset: int = 10_000  # the segments imagined from come from their own sampler (seed + offset)


@dataclass
class FinetuneEvalConfig:
    """Periodic evaluation during training (keeps the best checkpoint) and the final report on the selected
    checkpoint, each an `EvalConfig` (its seed is the run's). The official in-training evaluation: greedy on Q,
    8 blocks of context, 180 s of play (2,700 agent steps at 15 per second)."""

    every: int = 156  # steps between evaluations (official: every epoch ≈ 5k / 32); 0 = never
    periodic: EvalConfig = field(default_factory=lambda: EvalConfig(horizon=0, context=8, max_episode_steps=2700))
    final: EvalConfig = field(default_factory=lambda: EvalConfig(horizon=0, context=8, max_episode_steps=27_000))


@dataclass
class FinetuneConfig:
    name: str = "official"
    seed: int = 0
    steps: int = 50_000
    batch_size: int = 32
    lr: float = 5e-5  # world-model groups
    critic_lr: float = 5e-5  # the Q ensemble
    weight_decay: float = 0.01
    betas: tuple[float, ...] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float = 1.0
    schedule: str = "constant"
    warmup_steps: int = 0
    target_update_every: int = 1000
    max_bad_steps: int = 10
    precision: str = "auto"  # auto: bf16 autocast on GPU and on CPUs with native bf16, else fp32
    loss: CriticLossConfig = field(default_factory=lambda: CriticLossConfig(supervised_weight=0.5))
    # all (official) | freeze_backbone (blocks + ln_f frozen) | heads_and_task (only heads and task rows)
    train: str = "all"
    # own (the game's row; default) | official (the row the official code borrowed, else own) | mean (of the
    # pretraining games' rows) | a pretraining game's name (its rows copied into the new game's)
    task_row: str = "own"
    data: FinetuneDataConfig = field(default_factory=FinetuneDataConfig)
    tokenizer: TokenizerFinetuneConfig = field(default_factory=TokenizerFinetuneConfig)
    imagination: ImaginationConfig = field(default_factory=ImaginationConfig)
    evaluation: FinetuneEvalConfig = field(default_factory=FinetuneEvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


def load_finetune(name_or_path: str) -> FinetuneConfig:
    """`configs/finetune/{name}.yaml`, or a YAML path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = CONFIG_DIR / "finetune" / f"{name_or_path}.yaml"
    return load_yaml(FinetuneConfig, path)


def validate(config: FinetuneConfig) -> None:
    """Fail on settings that would only break deep inside a run."""
    d, i, e = config.data, config.imagination, config.evaluation
    checks = [
        (config.steps >= 1 and config.batch_size >= 1, "steps and batch_size must be >= 1"),
        (config.train in TRAIN_MODES, f"train {config.train!r}: choose one of {TRAIN_MODES}"),
        (config.schedule in SCHEDULES, f"schedule {config.schedule!r}: choose one of {SCHEDULES}"),
        (config.precision in ("auto", "fp32", "bf16"), f"precision {config.precision!r}: auto, fp32 or bf16"),
        (config.target_update_every > 0, "target_update_every must be > 0"),
        *critic_loss_checks(config.loss, "loss."),
        (len(config.betas) == 2, "betas needs two values"),
        (d.transitions >= 1, "data.transitions must be >= 1"),
        (bool(SELECTION.match(d.select)),
         f"data.select {d.select!r}: first, last, random or last-fraction=F with 0 < F <= 1"),
        (d.segment_length >= 2 and d.stride >= 1, "data.segment_length >= 2 and data.stride >= 1"),
        (0 < i.fraction < 1, "imagination.fraction must lie in (0, 1)"),
        (1 <= i.horizon < d.segment_length - 1, f"imagination.horizon must lie in [1, {d.segment_length - 2}]"),
        (i.beam_width >= 1 and i.buffer_factor >= 1 and i.after >= 0,
         "imagination: beam_width and buffer_factor must be >= 1, after >= 0"),
        (not i.enabled or round(config.batch_size * i.fraction) >= 1, "imagination.fraction × batch_size rounds to 0"),
        (not i.enabled or round(config.batch_size * i.fraction) < config.batch_size,
         "imagination.fraction × batch_size leaves no real segments"),
        (e.every >= 0 and e.periodic.episodes >= 1 and e.periodic.num_envs >= 1,
         "evaluation: every >= 0, periodic.episodes and periodic.num_envs >= 1"),
        (e.final.episodes >= 0 and e.final.num_envs >= 1, "evaluation.final: episodes >= 0 (0: no report), num_envs >= 1"),
        (config.tokenizer.frames >= 1, "tokenizer.frames must be >= 1"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(f"FinetuneConfig {config.name!r}: {message}")


def imagined_per_batch(config: FinetuneConfig) -> int:
    """Segments of each batch drawn from the imagination buffer once imagination is on."""
    return round(config.batch_size * config.imagination.fraction)
