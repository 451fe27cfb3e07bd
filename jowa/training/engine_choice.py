"""Pick and build the engine for a launch: DeepSpeed under the `deepspeed` launcher, else plain PyTorch."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from jowa.config import CONFIG_DIR
from jowa.training.distributed import DistContext
from jowa.training.engine import Engine, EngineSpec


def resolve_engine(kind: str, ctx: DistContext) -> str:
    if kind == "auto":
        return "deepspeed" if ctx.launcher == "deepspeed" else "torch"
    if kind == "deepspeed" and ctx.launcher == "torchrun":
        raise ValueError("engine.kind=deepspeed under torchrun: launch with `deepspeed` instead")
    if kind not in ("torch", "deepspeed"):
        raise ValueError(f"engine.kind {kind!r}: choose auto, torch or deepspeed")
    return kind


def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bf16 natively: a GPU, or a CPU with AVX512_BF16 or AMX (Sapphire Rapids,
    Zen 4). There bf16 autocast paid per training step: 1.57-1.8x on 40M on a Zen 4 (BENCHMARKS.md), 1.18x on
    tiny on a Sapphire Rapids. On AVX2 (Zen 3), or AVX-512 without BF16, bf16 is emulated and a 40M step ran
    > 10 min."""
    if device.type == "cuda":
        return True
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def resolve_precision(precision: str, device: torch.device) -> str:
    """auto: bf16 autocast where the device multiplies bf16 natively (on GPU the official precision), else
    fp32. The nearest-code search and the losses stay fp32 either way."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"engine.precision {precision!r}: choose auto, fp32 or bf16")
    return precision


def resolve_deepspeed_config(path: str) -> Path:
    """Absolute, or relative to the working directory, or to the repository root (configs/…)."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    return CONFIG_DIR.parent / path


def build_engine(
    kind: str, objective: nn.Module, optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None, spec: EngineSpec, ctx: DistContext,
    deepspeed_config: Path,
) -> Engine:
    if kind == "deepspeed":
        from jowa.training.deepspeed_engine import DeepSpeedEngine

        return DeepSpeedEngine(objective, optimizer, scheduler, spec, ctx, deepspeed_config)
    from jowa.training.torch_engine import TorchEngine

    return TorchEngine(objective, optimizer, scheduler, spec, ctx)
