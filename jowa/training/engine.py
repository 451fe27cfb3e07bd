"""The engine: what turns losses into parameter updates, behind one small interface.

Two implementations share it — `TorchEngine` (one process, or DDP under torchrun) and
`DeepSpeedEngine` (ZeRO-1/2, launched by `deepspeed`) — so the training loop is one loop:

    with engine.micro_step(boundary):        # DDP: no all-reduce until the last micro batch
        outputs = engine.forward(batch)      # autocast to bf16 on GPU
        engine.backward(outputs.loss)        # scaled by 1 / grad_accum
    result = engine.step()                   # clip, update — or skip when the gradient is not finite

A step is skipped when the global gradient norm is not finite — on the device where the optimizer can
(fused AdamW/Adam take a `found_inf` flag), so that a step needs no host sync. Both engines see the *synchronised*
gradient, so every rank makes the same decision; a non-finite loss is turned into a non-finite
gradient first (`poison_nonfinite`), which reduces "bad loss" and "bad gradient" to one mechanism.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager, Iterator

import torch
from torch import nn


@dataclass(frozen=True)
class StepResult:
    """0-dim tensors on the engine's device, read by the loop only when it logs (reading them syncs)."""

    applied: torch.Tensor  # bool; False: the update was skipped (non-finite loss or gradient)
    grad_norm: torch.Tensor  # float; global gradient norm before clipping; inf/nan when skipped


@dataclass(frozen=True)
class EngineSpec:
    """How to build an engine for one phase of a stage."""

    grad_accum: int
    micro_batch_size: int
    grad_clip: float  # <= 0: no clipping (the norm is still computed)
    precision: str  # "fp32" or "bf16" (autocast)


def poison_nonfinite(loss: torch.Tensor, params: list[nn.Parameter]) -> torch.Tensor:
    """`loss` unchanged in value and gradient when finite; otherwise a loss whose gradient is +inf in
    one parameter, so the (synchronised, global) gradient norm is infinite on every rank and the step is
    skipped there — with no host sync and the same backward graph shape on all ranks. One parameter is
    enough for the norm, and costs one kernel instead of one per parameter.
    """
    finite = torch.isfinite(loss)
    total = params[0].sum() if params else loss.new_zeros(())
    scale = torch.where(finite, torch.zeros_like(loss), torch.full_like(loss, float("inf")))
    # Finite: d/dp of scale·total is exactly 0, so the gradient equals that of `loss`.
    return torch.where(finite, loss, torch.zeros_like(loss)) + scale * total


class Engine(ABC):
    """One phase's model wrapper + optimizer (+ lr schedule)."""

    def __init__(self, objective: nn.Module, spec: EngineSpec, device: torch.device) -> None:
        self.objective = objective  # the unwrapped module whose forward returns the losses
        self.spec = spec
        self.device = device
        self.trainable = [p for p in objective.parameters() if p.requires_grad]

    def autocast(self) -> ContextManager[Any]:
        if self.spec.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def micro_step(self, boundary: bool) -> Iterator[None]:
        yield

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with self.autocast():
            return self.wrapped(*args, **kwargs)

    @property
    @abstractmethod
    def wrapped(self) -> nn.Module:
        """The callable that runs the forward pass (DDP / DeepSpeed wrapper or the objective itself)."""

    @abstractmethod
    def backward(self, loss: torch.Tensor) -> None: ...

    @abstractmethod
    def step(self) -> StepResult: ...

    @abstractmethod
    def learning_rates(self) -> dict[str, float]: ...

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Optimizer and schedule state into `directory` (collective: every rank calls it)."""

    @abstractmethod
    def load(self, directory: Path) -> None:
        """Inverse of `save` (collective)."""

    def close(self) -> None:
        """Release hooks and buffers before another engine takes over the same parameters."""


def group_learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    return {str(g.get("name", i)): float(g["lr"]) for i, g in enumerate(optimizer.param_groups)}
