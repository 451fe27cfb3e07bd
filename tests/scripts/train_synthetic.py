"""A small world-stage run on synthetic segments, driven by the training tests (also under `deepspeed`).

    python tests/scripts/train_synthetic.py --out DIR --steps 12 [--resume] [--kill-at 8] [--engine …]

Writes DIR/result.json on rank 0: status, counters, and (several ranks) the largest difference between
the ranks' final weights. --kill-at K sends SIGKILL to itself right after optimizer step K.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from jowa.config import WorldModelConfig  # noqa: E402
from jowa.model.world_model import WorldActionModel  # noqa: E402
from jowa.training import loop as loop_module  # noqa: E402
from jowa.training.config import CheckpointConfig, LoggingConfig, WorldStageConfig, micro_batch_size  # noqa: E402
from jowa.training.distributed import finish, init_distributed  # noqa: E402
from jowa.training.engine_choice import resolve_deepspeed_config, resolve_engine  # noqa: E402
from jowa.training.loop import LoopSettings, train_stage  # noqa: E402
from jowa.training.state import seed_everything  # noqa: E402
from jowa.training.synthetic import SyntheticSegments  # noqa: E402
from jowa.training.torch_engine import TorchEngine  # noqa: E402
from jowa.training.world_stage import world_stage  # noqa: E402

SMALL = WorldModelConfig(obs_vocab_size=64, num_layers=1, num_heads=2, embed_dim=32, q_mlp_dim=32, num_q=2)


class KillAt:
    def __init__(self, step: int) -> None:
        self.step = step

    def after_step(self, step: int) -> None:
        if step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)

    def after_resume(self, step: int) -> None:
        pass


def unsynchronised_engine(kind, objective, optimizer, scheduler, spec, ctx, deepspeed_config):
    """The official code's behaviour: every rank updates its own replica, gradients never meet."""
    return TorchEngine(objective, optimizer, scheduler, spec, ctx, synchronise=False)


def flat_weights(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).float().cpu() for p in model.state_dict().values()])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--critic-start", type=int, default=4)
    parser.add_argument("--every", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--schedule", default="constant")
    parser.add_argument("--engine", default="auto", choices=["auto", "torch", "deepspeed", "unsynchronised"])
    parser.add_argument("--zero", default="configs/deepspeed/zero1.json")
    parser.add_argument("--kill-at", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--local_rank", type=int, default=0)  # appended by the deepspeed launcher
    args = parser.parse_args()

    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    seed_everything(0)
    model = WorldActionModel(SMALL)
    config = WorldStageConfig(steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum,
                              critic_start=args.critic_start, lr=1e-3, critic_phase_lr=1e-3, critic_lr=1e-3,
                              target_update_every=3, schedule=args.schedule,
                              warmup_steps=2 if args.schedule != "constant" else 0)
    micro = micro_batch_size(config.batch_size, config.grad_accum, ctx.world_size)
    source = SyntheticSegments(micro, SMALL.obs_vocab_size, seed=0, rank=ctx.rank)
    first_batch = next(SyntheticSegments(micro, SMALL.obs_vocab_size, seed=0, rank=ctx.rank))
    stage = world_stage(model, config, source, micro)
    if args.kill_at:
        stage.hooks.append(KillAt(args.kill_at))
    engine = "torch" if args.engine == "unsynchronised" else resolve_engine(args.engine, ctx)
    if args.engine == "unsynchronised":
        loop_module.build_engine = unsynchronised_engine
    settings = LoopSettings(engine, resolve_deepspeed_config(args.zero), "fp32",
                            CheckpointConfig(every=args.every, keep_last=3),
                            LoggingConfig(every=2, progress_bar=False), max_bad_steps=3, resume=args.resume)
    outcome = train_stage(stage, ctx, settings, args.out)

    result = {"status": outcome.status, "step": outcome.state.step, "skipped": outcome.state.skipped_steps,
              "engine": engine, "world_size": ctx.world_size, "checkpoint": str(outcome.checkpoint),
              "first_losses": outcome.first_losses, "last_losses": outcome.last_losses}
    if ctx.world_size > 1:
        weights = flat_weights(model)
        gathered = [torch.empty_like(weights) for _ in range(ctx.world_size)]
        dist.all_gather(gathered, weights)
        result["max_rank_diff"] = max(float((g - gathered[0]).abs().max()) for g in gathered)
        checksums = [torch.zeros(1) for _ in range(ctx.world_size)]
        dist.all_gather(checksums, first_batch.observations.float().sum().reshape(1))
        result["first_batch_checksums"] = [float(c) for c in checksums]
    if ctx.is_main:
        (args.out / "result.json").write_text(json.dumps(result, indent=1))
    finish(0)


if __name__ == "__main__":
    main()
