"""Stage-2 training throughput through the real loop: token shards → segment DataLoader → prefetch →
engine (forward, guarded backward, clip, AdamW) → target updates → logging, on this machine's CPU.

    python benchmarks/train_step.py [--sizes tiny,40M] [--batch 8] [--steps 12] [--warmup 3] [--workers 0,1]
                                    [--precisions fp32,bf16]

Shards of random tokens (2 games, 200-step episodes) are written to a temporary directory first.
Timing starts after `--warmup` steps; tokens/s counts every token of the 8-step segments (296 per
segment, padding included), as the model processes them. Each row also times the bare step (one
fixed batch in memory: forward, backward, AdamW; no loader, guard, clipping or bookkeeping) right
after, so `loop/bare` shows what the loop costs. The machine may be shared: compare rows of one
run, not runs of different days.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from jowa.config import load_size  # noqa: E402
from jowa.data.segments import SegmentDataset  # noqa: E402
from jowa.data.shards import ShardWriter, write_index  # noqa: E402
from jowa.config import CriticLossConfig  # noqa: E402
from jowa.model.world_model import WorldActionModel  # noqa: E402
from jowa.objective import compute_losses  # noqa: E402
from jowa.training.config import CheckpointConfig, LoggingConfig, WorldStageConfig  # noqa: E402
from jowa.training.distributed import init_distributed  # noqa: E402
from jowa.training.loop import LoopSettings, train_stage  # noqa: E402
from jowa.training.segment_source import SegmentSource  # noqa: E402
from jowa.training.world_stage import world_stage  # noqa: E402


def write_random_shards(directory: Path, vocab: int, episodes: int = 40, length: int = 200) -> None:
    rng = np.random.default_rng(0)
    for game in ("Pong", "Breakout"):
        writer = ShardWriter(directory, f"{game}-1", tokenizer=f"random-{vocab}", max_steps=4000)
        for e in range(episodes // 2):
            terminals = np.zeros(length, np.uint8)
            terminals[-1] = 1
            writer.write(f"{game}/1/{e}", game, rng.integers(0, vocab, (length, 36)), rng.integers(0, 18, length),
                         rng.choice(np.array([-1, 0, 1], np.float32), length), terminals)
            writer.roll_if_full()
        writer.close()
    write_index(directory)


class Clock:
    """Hook: wall time at the end of every step."""

    def __init__(self) -> None:
        self.times: dict[int, float] = {}

    def after_step(self, step: int) -> None:
        self.times[step] = time.perf_counter()

    def after_resume(self, step: int) -> None:
        pass


def bare_tokens_per_s(model: WorldActionModel, batch, steps: int, precision: str) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.head_q.requires_grad_(True)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")

    def step() -> None:
        with autocast:
            terms, _ = compute_losses(model, batch, True, CriticLossConfig())
        terms.total.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch.observations.numel() / 36 * 37 / (time.perf_counter() - started)


def measure(size: str, batch: int, steps: int, warmup: int, workers: int, precision: str, root: Path) -> dict[str, float]:
    config = load_size(size).world_model
    shards = root / f"shards-{config.obs_vocab_size}"
    if not shards.is_dir():
        write_random_shards(shards, config.obs_vocab_size)
    ctx = init_distributed("cpu", argv=[])
    torch.manual_seed(0)
    model = WorldActionModel(config)
    total = warmup + steps
    world = WorldStageConfig(steps=total, batch_size=batch, critic_start=0, target_update_every=1000)
    dataset = SegmentDataset(shards, batch_size=batch, seed=0, rank=0, world_size=1, shuffle_buffer=2000)
    stage = world_stage(model, world, SegmentSource(dataset, workers, seed=0), batch)
    clock = Clock()
    stage.hooks.append(clock)
    settings = LoopSettings("torch", Path("unused"), precision, CheckpointConfig(every=10**9, keep_last=1),
                            LoggingConfig(every=10**9, tensorboard=False, progress_bar=False), max_bad_steps=3)
    run_dir = root / f"run-{size}-{batch}-{workers}-{precision}"
    train_stage(stage, ctx, settings, run_dir)
    seconds = clock.times[total] - clock.times[warmup]
    tokens = steps * batch * world.segment_length * config.tokens_per_block
    fixed = next(iter(SegmentDataset(shards, batch_size=batch, seed=1, rank=0, world_size=1, shuffle_buffer=64)))
    return {"tokens_per_s": tokens / seconds, "ms_per_step": 1000 * seconds / steps,
            "bare_tokens_per_s": bare_tokens_per_s(model, fixed, max(steps // 2, 2), precision),
            "params_M": sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="tiny,40M")
    parser.add_argument("--batch", type=int, default=8, help="segments per step")
    parser.add_argument("--steps", type=int, default=12, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", default="0,1", help="DataLoader worker counts to compare")
    parser.add_argument("--precisions", default="fp32,bf16", help="fp32 and/or bf16 (autocast)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, eager, critic phase (all losses)")
    print(f"{'size':<6}{'params':>9}{'batch':>7}{'workers':>9}{'precision':>11}{'ms/step':>10}{'tokens/s':>11}"
          f"{'bare tok/s':>12}{'loop/bare':>11}")
    with tempfile.TemporaryDirectory(prefix="jowa-bench-") as tmp:
        for size in args.sizes.split(","):
            for precision in args.precisions.split(","):
                for workers in (int(w) for w in args.workers.split(",")):
                    r = measure(size, args.batch, args.steps, args.warmup, workers, precision, Path(tmp))
                    print(f"{size:<6}{r['params_M']:>8.1f}M{args.batch:>7}{workers:>9}{precision:>11}"
                          f"{r['ms_per_step']:>10.0f}{r['tokens_per_s']:>11.0f}{r['bare_tokens_per_s']:>12.0f}"
                          f"{r['tokens_per_s'] / r['bare_tokens_per_s']:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
