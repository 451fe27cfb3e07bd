"""Training configuration: both pretraining stages, the engine, checkpoints and logging.

`configs/training/{name}.yaml` holds one `TrainingConfig`; `key=value` overrides go through
`jowa.config.apply_overrides`. Batch sizes are *global*: per optimizer step, summed over gradient
accumulation and ranks, so a config means the same thing on 1 CPU and on 64 GPUs:

    global batch = micro batch per rank × grad_accum × world size

The micro batch is derived (and must divide exactly) — see `micro_batch_size`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jowa.config import CONFIG_DIR, CriticLossConfig, critic_loss_checks, load_yaml
from jowa.model.compile import COMPILE_MODES, compile_mode
from jowa.tokenizer.tokenizer import PIXEL_LOSSES  # tokenizer.pixel_loss

RESTART_BY = ("latent", "pixels")  # tokenizer.code_restart_by (jowa/training/code_restart.py)

SCHEDULES: tuple[str, ...] = ("constant", "constant_with_warmup", "linear", "cosine")
ENGINES: tuple[str, ...] = ("auto", "torch", "deepspeed")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")


@dataclass
class TokenizerStageConfig:
    """Stage 1: the VQ-VAE on frames sampled from the replay episodes (docs/official_jowa.md §2.8)."""

    steps: int = 250_000
    batch_size: int = 2048  # frames per optimizer step, global (official `tokenizer.batch_size`)
    grad_accum: int = 1
    lr: float = 1e-4  # Adam, no weight decay
    grad_clip: float = 1.0
    grid_every: int = 5000  # write a reconstruction grid PNG every this many steps (and at the end)
    grid_frames: int = 16
    pool_frames: int = 1_000_000  # frames reservoir-sampled from the replay into memory, per rank (84·84 B each)
    scan_frames: int = 4_000_000  # stop reading the replay after this many frames per rank
    # Ours, not official (0 = the official plain L1): extra L1 weight on the pixels that differ from their
    # game's background (jowa.diagnostics.pixels.FOREGROUND_LEVELS), so that small moving objects count.
    foreground_weight: float = 0.0
    # Ours, not official (0 = off): extra L1 weight on the pixels that changed since the episode's previous
    # frame (jowa.diagnostics.pixels.CHANGE_LEVELS), so that the ball and the shots outweigh still objects;
    # the frame pool then keeps each frame's predecessor (twice the pool's memory). Breakout alone, 2000 steps
    # (results/tokenizer-ball-2026-12-08): 1000 lowers the changed-pixel error 0.066 -> 0.055 and keeps 10.1 %
    # of the small moving objects against 9.2 %.
    motion_weight: float = 0.0
    # Ours, not official (0 = never): every this many steps, move the codes that a fixed frame sample does
    # not use onto latents of that sample (jowa/training/code_restart.py).
    code_restart_every: int = 0
    code_restart_frames: int = 1024
    # Which latents the dead codes move onto: `latent` (∝ squared distance to the nearest code) or `pixels`
    # (the patches reconstructed worst, weighted like the loss); jowa/training/code_restart.py. Breakout alone,
    # 2000 steps: 9.4 % of the small moving objects kept against 9.2 % (results/tokenizer-ball-2026-12-08).
    code_restart_by: str = "latent"
    # Ours, not official (l1 = the official loss): the per-pixel reconstruction error, |x - x̂| or (x - x̂)².
    # Under L1 a blurred bump over a small object costs more on the background it covers than it gains on the
    # object, so the decoder never starts to draw one; under L2 the bump pays and then sharpens
    # (results/tokenizer-small-2026-12-08).
    pixel_loss: str = "l1"


@dataclass
class WorldStageConfig:
    """Stage 2: the world-action model on token segments (docs/official_jowa.md §6.1).

    Steps [0, critic_start) train the world-model losses only (lr `lr`, Q head frozen); from
    `critic_start` on, TD + CQL + supervised_weight × world-model losses with a fresh AdamW whose
    world groups get `critic_phase_lr` (the official continuous run kept 1e-4 by accident, §6.3).
    """

    steps: int = 1_750_000
    batch_size: int = 512  # segments per optimizer step, global
    grad_accum: int = 1
    segment_length: int = 8
    critic_start: int = 250_000
    lr: float = 1e-4  # world groups before critic_start
    critic_phase_lr: float = 5e-5  # world groups from critic_start on (official `second_stage.learning_rate`)
    critic_lr: float = 5e-5  # the Q-ensemble group, whenever it trains
    weight_decay: float = 0.01
    betas: tuple[float, ...] = (0.9, 0.999)
    eps: float = 1e-8
    grad_clip: float = 1.0
    schedule: str = "constant"  # one of SCHEDULES, per phase (transformers' schedulers)
    warmup_steps: int = 0
    target_update_every: int = 1000  # hard copy of the Q head into the target head, counting all steps
    loss: CriticLossConfig = field(default_factory=CriticLossConfig)


@dataclass
class DataConfig:
    """Stage-2 segments (`jowa.data.segments`) and the tokenize step."""

    stride: int = 4  # segment starts 0, 4, 8, … (official pretraining)
    mixing: str = "uniform"  # "uniform" over segments (official) or "balanced" over games
    shuffle_buffer: int = 10_000
    num_workers: int = 2  # DataLoader workers per rank
    prefetch: int = 2  # batches the loop's prefetch thread keeps ready
    tokenize_batch_frames: int = 4096  # frames per encoder batch in the tokenize stage


@dataclass
class EngineConfig:
    kind: str = "auto"  # auto: DeepSpeed when launched by `deepspeed`, else plain PyTorch (DDP under torchrun)
    deepspeed_config: str = "configs/deepspeed/zero1.json"  # relative to the repository root, or absolute
    precision: str = "auto"  # auto: bf16 autocast on GPU and on CPUs with native bf16, else fp32
    # torch.compile of the transformer blocks / the tokenizer, in place (jowa/model/compile.py): off, on, or
    # auto (on for stages long enough to win the compile time back). YAML reads a bare off/on as a bool.
    compile: str | bool = "off"


@dataclass
class CheckpointConfig:
    every: int = 5000  # optimizer steps; a checkpoint is also written at the end and on SIGTERM
    keep_last: int = 3


@dataclass
class LoggingConfig:
    every: int = 100  # optimizer steps between scalar logs
    tensorboard: bool = True
    wandb: bool = False  # only when asked; never prompts (mode below)
    wandb_project: str = "jowa"
    wandb_mode: str = "offline"  # "online" needs a prior `wandb login` or WANDB_API_KEY
    progress_bar: bool = True


@dataclass
class TrainingConfig:
    name: str = "official"
    seed: int = 0
    max_bad_steps: int = 10  # consecutive skipped (non-finite) steps before the run stops
    tokenizer: TokenizerStageConfig = field(default_factory=TokenizerStageConfig)
    world: WorldStageConfig = field(default_factory=WorldStageConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    data: DataConfig = field(default_factory=DataConfig)


def load_training(name_or_path: str) -> TrainingConfig:
    """`configs/training/{name}.yaml`, or a YAML path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = CONFIG_DIR / "training" / f"{name_or_path}.yaml"
    config = load_yaml(TrainingConfig, path)
    validate(config)
    return config


def micro_batch_size(global_batch: int, grad_accum: int, world_size: int) -> int:
    """Per-rank micro batch; the global batch must split exactly."""
    parts = grad_accum * world_size
    if grad_accum < 1 or global_batch % parts:
        raise ValueError(
            f"global batch {global_batch} does not split into grad_accum {grad_accum} × world size {world_size}; "
            f"choose a batch_size divisible by {parts}"
        )
    return global_batch // parts


def validate(config: TrainingConfig) -> None:
    """Fail on settings that would only break deep inside a run."""
    w, t = config.world, config.tokenizer
    checks = [
        (config.engine.kind in ENGINES, f"engine.kind {config.engine.kind!r}: choose one of {ENGINES}"),
        (config.engine.precision in PRECISIONS, f"engine.precision {config.engine.precision!r}: choose one of {PRECISIONS}"),
        (compile_mode(config.engine.compile) in COMPILE_MODES,
         f"engine.compile {config.engine.compile!r}: choose one of {COMPILE_MODES}"),
        (w.schedule in SCHEDULES, f"world.schedule {w.schedule!r}: choose one of {SCHEDULES}"),
        (0 <= w.critic_start <= w.steps, f"world.critic_start {w.critic_start} must lie in [0, world.steps={w.steps}]"),
        (w.steps >= 0 and t.steps >= 0, "steps must be >= 0"),
        (w.batch_size > 0 and t.batch_size > 0, "batch sizes must be > 0"),
        (w.target_update_every > 0, "world.target_update_every must be > 0"),
        *critic_loss_checks(w.loss, "world.loss."),
        (config.checkpoint.every > 0 and config.checkpoint.keep_last > 0, "checkpoint.every and keep_last must be > 0"),
        (config.logging.every > 0, "logging.every must be > 0"),
        (config.max_bad_steps > 0, "max_bad_steps must be > 0"),
        (t.grid_every > 0 and t.grid_frames > 0, "tokenizer.grid_every and grid_frames must be > 0"),
        (0 < t.pool_frames <= t.scan_frames, "need 0 < tokenizer.pool_frames <= tokenizer.scan_frames"),
        (t.foreground_weight >= 0, f"tokenizer.foreground_weight {t.foreground_weight} must be >= 0"),
        (t.motion_weight >= 0, f"tokenizer.motion_weight {t.motion_weight} must be >= 0"),
        (t.code_restart_every >= 0 and t.code_restart_frames > 0,
         "tokenizer.code_restart_every must be >= 0 and code_restart_frames > 0"),
        (t.code_restart_by in RESTART_BY, f"tokenizer.code_restart_by {t.code_restart_by!r}: choose one of {RESTART_BY}"),
        (t.pixel_loss in PIXEL_LOSSES, f"tokenizer.pixel_loss {t.pixel_loss!r}: choose one of {PIXEL_LOSSES}"),
        (len(w.betas) == 2, "world.betas needs two values"),
        (config.data.mixing in ("uniform", "balanced"), f"data.mixing {config.data.mixing!r}: uniform or balanced"),
        (config.data.num_workers >= 0 and config.data.stride > 0, "data.num_workers >= 0 and data.stride > 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(f"TrainingConfig {config.name!r}: {message}")
