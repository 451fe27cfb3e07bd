"""Stage-2 training throughput through the real loop: token shards → segment DataLoader → prefetch →
engine (forward, guarded backward, clip, AdamW) → target updates → logging.

    python benchmarks/train_step.py [--sizes tiny,40M] [--batch 8] [--steps 12] [--warmup 3] [--workers 0,1]
                                    [--precisions fp32,bf16] [--device cpu|cuda] [--compile]

Shards of random tokens (2 games, 200-step episodes) are written to a temporary directory first.
Timing starts after `--warmup` steps; tokens/s counts every token of the 8-step segments (296 per
segment, padding included), as the model processes them. Each row also times the bare step (one
fixed batch in memory: forward, backward, AdamW; no loader, guard, clipping or bookkeeping) right
after, so `loop/bare` shows what the loop costs. `--compile` adds, beside each eager row, the same run
with the transformer blocks compiled in place (`engine.compile=on`, inductor); its first step includes
the compile ("first step s"), the timed steps do not. On a GPU the rows carry the MFU by the honest
FLOPs count (jowa/training/throughput.py). The machine may be shared: compare rows of one run, not runs
of different days.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.common import (  # noqa: E402
    Table, bf16_pays, device_name, pick_device, progress, rate, ratio, seconds_per_call, synchronize,
)
from jowa.config import CriticLossConfig, load_size  # noqa: E402
from jowa.data.batch import Batch  # noqa: E402
from jowa.data.segments import SegmentDataset  # noqa: E402
from jowa.data.shards import ShardWriter, write_index  # noqa: E402
from jowa.model.compile import compile_world_model  # noqa: E402
from jowa.model.world_model import WorldActionModel  # noqa: E402
from jowa.objective import compute_losses  # noqa: E402
from jowa.training.config import CheckpointConfig, LoggingConfig, WorldStageConfig  # noqa: E402
from jowa.training.distributed import init_distributed  # noqa: E402
from jowa.training.loop import LoopSettings, train_stage  # noqa: E402
from jowa.training.segment_source import SegmentSource  # noqa: E402
from jowa.training.throughput import peak_flops, world_flops_per_token  # noqa: E402
from jowa.training.world_stage import world_stage  # noqa: E402

TITLE = "Training loop"
SUMMARY = (
    "Stage-2 tokens/s through the real training loop: token shards of random tokens (2 games) → segment "
    "DataLoader (0 or 1 workers) → prefetch → engine (forward, all losses, guarded backward, clipping, AdamW) → "
    "target updates → logging, timed after the warm-up steps; every token of the 8-step segments counts "
    "(296 per segment, padding included). The baseline, measured right after on the same model, is the bare "
    "step: one fixed batch already in memory, forward, backward and AdamW, nothing else. "
    "ratio = loop / bare (1.00 would mean the loop costs nothing). Compiled rows (`engine.compile=on`: the "
    "transformer blocks through torch.compile, in place) sit beside the eager ones of the same run; "
    "compiled/eager compares their loop tokens/s, and \"first step s\" holds the compile. bf16 rows only on a "
    "GPU or a CPU with native bf16 (`common.bf16_pays`)."
)


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
    """Hook: wall time at the end of the steps that bound the timed window (GPU drained there only, so the
    loop's own overlap of host and device work inside the window is kept); step 0 is the start of training."""

    def __init__(self, steps: set[int], device: torch.device) -> None:
        self.steps, self.device = steps, device
        self.times: dict[int, float] = {}

    def attach(self, logger: object) -> None:  # called right before the first step
        self.times[0] = time.perf_counter()

    def after_step(self, step: int) -> None:
        if step in self.steps:
            synchronize(self.device)
            self.times[step] = time.perf_counter()

    def after_resume(self, step: int) -> None:
        pass


def bare_tokens_per_s(model: WorldActionModel, batch: Batch, steps: int, precision: str) -> float:
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.head_q.requires_grad_(True)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            terms, _ = compute_losses(model, batch, True, CriticLossConfig())
        terms.total.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return batch.observations.numel() / 36 * 37 / seconds_per_call(step, device, steps)


def measure(size: str, batch: int, steps: int, warmup: int, workers: int, precision: str, root: Path,
            device: torch.device, episodes: int = 40, length: int = 200, compiled: bool = False,
            backend: str = "inductor") -> dict[str, float]:
    config = load_size(size).world_model
    shards = root / f"shards-{config.obs_vocab_size}"
    if not shards.is_dir():
        write_random_shards(shards, config.obs_vocab_size, episodes, length)
    ctx = init_distributed(str(device), argv=[])
    torch.manual_seed(0)
    model = WorldActionModel(config).to(device)
    if compiled:
        torch._dynamo.reset()  # every compiled row pays its own compile
        compile_world_model(model, backend=backend)
    total = warmup + steps
    world = WorldStageConfig(steps=total, batch_size=batch, critic_start=0, target_update_every=1000)
    dataset = SegmentDataset(shards, batch_size=batch, seed=0, rank=0, world_size=1, shuffle_buffer=2000)
    stage = world_stage(model, world, SegmentSource(dataset, workers, seed=0), batch)
    clock = Clock({1, warmup, total}, device)
    stage.hooks.append(clock)
    settings = LoopSettings("torch", Path("unused"), precision, CheckpointConfig(every=10**9, keep_last=1),
                            LoggingConfig(every=10**9, tensorboard=False, progress_bar=False), max_bad_steps=3)
    run_dir = root / f"run-{size}-{batch}-{workers}-{precision}-{'compiled' if compiled else 'eager'}"
    train_stage(stage, ctx, settings, run_dir)
    seconds = clock.times[total] - clock.times[warmup]
    tokens = steps * batch * world.segment_length * config.tokens_per_block
    fixed = next(iter(SegmentDataset(shards, batch_size=batch, seed=1, rank=0, world_size=1, shuffle_buffer=64)))
    peak = peak_flops(device)
    mfu = tokens / seconds * world_flops_per_token(model, config) / peak if peak else float("nan")
    return {"tokens_per_s": tokens / seconds, "ms_per_step": 1000 * seconds / steps, "mfu": mfu,
            "first_step_s": clock.times[1] - clock.times[0],
            "bare_tokens_per_s": bare_tokens_per_s(model, fixed.to(device), max(steps // 2, 2), precision),
            "params_M": sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6}


def measure_table(device: torch.device, sizes: list[str], batch: int, steps: int, warmup: int, workers: list[int],
                  precisions: list[str], episodes: int = 40, length: int = 200, compiled: bool = False,
                  backend: str = "inductor") -> Table:
    """One row per size × precision × worker count, eager; with `compiled`, the compiled row of the first
    worker count right after its eager twin."""
    mfu = device.type == "cuda"
    table = Table(f"{TITLE}, stage 2, critic phase (all losses)",
                  ["size", "params", "batch", "workers", "precision", "mode", "first step s", "ms/step",
                   "loop tokens/s", "bare tokens/s", "ratio loop/bare", "compiled/eager"] + (["MFU"] if mfu else []))
    try:
        with tempfile.TemporaryDirectory(prefix="jowa-bench-") as tmp:
            for size in sizes:
                for precision in precisions:
                    for count in workers:
                        modes = [False, True] if compiled and count == workers[0] else [False]
                        eager_rate = None
                        for mode in modes:
                            name = "compiled" if mode else "eager"
                            progress(f"  training loop: {size}, batch {batch}, {count} workers, {precision}, {name}")
                            r = measure(size, batch, steps, warmup, count, precision, Path(tmp), device, episodes,
                                        length, compiled=mode, backend=backend)
                            eager_rate = eager_rate or r["tokens_per_s"]
                            table.add(size, f"{r['params_M']:.1f}M", batch, count, precision, name,
                                      f"{r['first_step_s']:.1f}", f"{r['ms_per_step']:,.0f}", rate(r["tokens_per_s"]),
                                      rate(r["bare_tokens_per_s"]), ratio(r["tokens_per_s"] / r["bare_tokens_per_s"]),
                                      ratio(r["tokens_per_s"] / eager_rate),
                                      *([f"{100 * r['mfu']:.1f} %"] if mfu else []))
    finally:
        # The loop flushes denormals on CPU for the whole process; later benchmarks run with the default.
        torch.set_flush_denormal(False)
        torch._dynamo.reset()
    return table


def tables(device: torch.device, quick: bool = False) -> list[Table]:
    if quick:
        return [measure_table(device, ["tiny"], batch=2, steps=2, warmup=1, workers=[0], precisions=["fp32", "bf16"],
                              episodes=4, length=40)]
    precisions = ["fp32", "bf16"] if bf16_pays(device) else ["fp32"]
    return [measure_table(device, ["tiny", "40M"], batch=8, steps=12, warmup=3, workers=[0, 1],
                          precisions=precisions, compiled=True)]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="tiny,40M")
    parser.add_argument("--batch", type=int, default=8, help="segments per step")
    parser.add_argument("--steps", type=int, default=12, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", default="0,1", help="DataLoader worker counts to compare")
    parser.add_argument("--precisions", default="fp32,bf16", help="fp32 and/or bf16 (autocast)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--compile", action="store_true", help="a compiled row beside each eager one")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    device = pick_device(args.device)
    print(f"{device_name(device)}, torch {torch.__version__}\n")
    table = measure_table(device, args.sizes.split(","), args.batch, args.steps, args.warmup,
                          [int(w) for w in args.workers.split(",")], args.precisions.split(","), compiled=args.compile)
    print(table.to_markdown())
    if args.json:
        args.json.write_text(json.dumps([dict(zip(table.columns, row)) for row in table.rows], indent=1))


if __name__ == "__main__":
    main()
