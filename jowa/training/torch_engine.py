"""Plain PyTorch engine: one process on CPU/GPU, or DDP when several ranks run under torchrun."""

from __future__ import annotations

import contextlib
import gc
import math
from pathlib import Path
from typing import Iterator

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from jowa.training.distributed import DistContext
from jowa.training.engine import Engine, EngineSpec, StepResult, group_learning_rates

OPTIMIZER_FILE = "optimizer.pt"


def device_skip(optimizer: torch.optim.Optimizer, scheduler: object | None) -> bool:
    """Whether a non-finite step can be skipped on the device: a fused Adam(W) (its `found_inf`) and no lr
    schedule (a schedule's step is host code that must know whether the update happened)."""
    fused = isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)) and bool(optimizer.defaults.get("fused"))
    return fused and scheduler is None


class TorchEngine(Engine):
    """`synchronise=False` under several ranks trains independent replicas — the official code's
    (accidental) behaviour, kept only so tests can show that the real engines differ from it."""

    def __init__(
        self, objective: nn.Module, optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None, spec: EngineSpec, ctx: DistContext,
        synchronise: bool = True,
    ) -> None:
        super().__init__(objective.to(ctx.device), spec, ctx.device)
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.ctx = ctx
        self._wrapped: nn.Module = objective
        if ctx.world_size > 1 and synchronise:
            device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            # No buffer is written during training (atoms, masks, indices are constants): no re-broadcast per
            # forward. Gradients as views of the all-reduce buckets: one copy less per step.
            self._wrapped = DistributedDataParallel(objective, device_ids=device_ids, broadcast_buffers=False,
                                                    gradient_as_bucket_view=True)

    @property
    def wrapped(self) -> nn.Module:
        return self._wrapped

    @contextlib.contextmanager
    def micro_step(self, boundary: bool) -> Iterator[None]:
        if boundary or not isinstance(self._wrapped, DistributedDataParallel):
            yield
        else:
            with self._wrapped.no_sync():  # accumulate locally; all-reduce on the last micro batch
                yield

    def backward(self, loss: torch.Tensor) -> None:
        (loss / self.spec.grad_accum).backward()

    def step(self) -> StepResult:
        clip = self.spec.grad_clip if self.spec.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.trainable, clip).detach()
        finite = torch.isfinite(norm)
        if device_skip(self.optimizer, self.scheduler):
            # The fused kernel leaves weights, moments and step counts alone when found_inf is 1: no sync.
            self.optimizer.found_inf = (~finite).float()  # type: ignore[attr-defined]
            self.optimizer.step()
        elif bool(finite):  # a host read: free on CPU; with a schedule, which must not advance on a skipped step
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult(finite, norm)

    def learning_rates(self) -> dict[str, float]:
        return group_learning_rates(self.optimizer)

    def save(self, directory: Path) -> None:
        if self.ctx.is_main:  # DDP replicas hold identical optimizer states
            state = {"optimizer": self.optimizer.state_dict(),
                     "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None}
            torch.save(state, directory / OPTIMIZER_FILE)

    def load(self, directory: Path) -> None:
        state = torch.load(directory / OPTIMIZER_FILE, map_location=self.device, weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        if (state["scheduler"] is None) != (self.scheduler is None):
            raise ValueError(f"{directory}: lr schedule in the checkpoint does not match the configured one")
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])

    def close(self) -> None:
        if isinstance(self._wrapped, DistributedDataParallel):
            # The reducer's gradient hooks live as long as the wrapper; drop it before the next phase wraps
            # the same parameters again.
            self._wrapped = self.objective
            gc.collect()
