"""DeepSpeed engine (ZeRO-1/2) for runs launched by `deepspeed` on GPUs, nodes, or CPU ranks over gloo.

The JSON under `configs/deepspeed/` chooses the ZeRO stage and communication settings; batch sizes,
accumulation and clipping are filled in from the training config so there is one source of truth.
We hand DeepSpeed a ready torch optimizer (a DeepSpeed-config optimizer would JIT-compile a fused
op for ~100 s) and keep fp32 parameters by default: bf16 comes from autocast, as in the official run.
A `"bf16": {"enabled": true}` section in the JSON switches DeepSpeed to bf16 parameters with fp32
master weights instead (less memory, slightly different numerics).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jowa.training.distributed import DistContext
from jowa.training.engine import Engine, EngineSpec, StepResult, group_learning_rates

TAG = "deepspeed"
SUPPORTED_ZERO_STAGES = (1, 2)


def load_deepspeed_config(path: Path, spec: EngineSpec, world_size: int) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"DeepSpeed config not found: {path}")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
    stage = config.get("zero_optimization", {}).get("stage", 0)
    if stage not in SUPPORTED_ZERO_STAGES:
        raise ValueError(f"{path}: zero_optimization.stage {stage} is not supported; use 1 or 2")
    owned = ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
             "gradient_clipping", "optimizer", "scheduler")
    clash = [key for key in owned if key in config]
    if clash:
        raise ValueError(f"{path}: {clash} are set by the training config (batch_size, grad_accum, grad_clip, "
                         f"optimizer, schedule); remove them from the DeepSpeed JSON")
    return {
        **config,
        "train_micro_batch_size_per_gpu": spec.micro_batch_size,
        "gradient_accumulation_steps": spec.grad_accum,
        "train_batch_size": spec.micro_batch_size * spec.grad_accum * world_size,
        "gradient_clipping": max(spec.grad_clip, 0.0),
        "zero_allow_untested_optimizer": True,
        "steps_per_print": config.get("steps_per_print", 1 << 62),
    }


class DeepSpeedEngine(Engine):
    def __init__(
        self, objective: nn.Module, optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None, spec: EngineSpec, ctx: DistContext,
        config_path: Path,
    ) -> None:
        import deepspeed

        super().__init__(objective, spec, ctx.device)
        config = load_deepspeed_config(config_path, spec, ctx.world_size)
        self.ds, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=objective, optimizer=optimizer, lr_scheduler=scheduler, config=config,
        )
        self._base_optimizer = optimizer

    @property
    def wrapped(self) -> nn.Module:
        return self.ds

    def backward(self, loss: torch.Tensor) -> None:
        # DeepSpeed counts micro steps itself: step() off the boundary only advances that counter.
        boundary = self.ds.is_gradient_accumulation_boundary()
        self.ds.backward(loss)  # scales by 1 / grad_accum
        if not boundary:
            self.ds.step()

    def step(self) -> StepResult:
        if not self.ds.is_gradient_accumulation_boundary():
            raise RuntimeError("DeepSpeedEngine.step() called off the accumulation boundary; "
                               "the loop and DeepSpeed disagree on grad_accum")
        self.ds.step()  # DeepSpeed decides on overflow itself (host side); we only wrap its answer
        norm = self.ds.get_global_grad_norm()
        norm = math.inf if norm is None else float(norm)
        return StepResult(torch.tensor(bool(self.ds.was_step_applied())), torch.tensor(norm, dtype=torch.float64))

    def learning_rates(self) -> dict[str, float]:
        return group_learning_rates(self._base_optimizer)

    def save(self, directory: Path) -> None:
        self.ds.save_checkpoint(str(directory), tag=TAG, save_latest=False)

    def load(self, directory: Path) -> None:
        path, _ = self.ds.load_checkpoint(str(directory), tag=TAG, load_optimizer_states=True,
                                          load_lr_scheduler_states=True)
        if path is None:
            raise FileNotFoundError(f"{directory}: no DeepSpeed state under tag {TAG!r}")

    def close(self) -> None:
        self.ds.destroy()
