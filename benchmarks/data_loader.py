"""Token-shard loading speed (segments/s, 0-2 DataLoader workers) and bytes per transition on disk,
side by side with the segments/s one 40M stage-2 training step consumes on this machine.

    python benchmarks/data_loader.py [--games Pong,Breakout] [--transitions 5000] [--batch-size 32]

Data: real ALE play (random policy, sticky 0.25) collected into DQN-Replay files, tokenized with the fixed
patch quantizer into shards. Bytes/transition are given for those tokens and, as a worst case, for the
same episodes with i.i.d. uniform tokens (incompressible: what no trained tokenizer can exceed).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.common import (  # noqa: E402
    Table, bf16_pays, device_name, pick_device, progress, rate, ratio, seconds_per_call,
)
from jowa.config import CriticLossConfig, load_size  # noqa: E402
from jowa.data.collect import collect  # noqa: E402
from jowa.data.segments import SegmentDataset, make_loader  # noqa: E402
from jowa.data.shards import ShardWriter, iter_episodes, resolve_shards, write_index  # noqa: E402
from jowa.data.tokenize_replay import tokenize_replay  # noqa: E402
from jowa.model.world_model import WorldActionModel  # noqa: E402
from jowa.objective import compute_losses  # noqa: E402

TITLE = "Data loader"
SUMMARY = (
    "Real ALE play (random policy, sticky actions 0.25) is collected into DQN-Replay files and tokenized with "
    "the fixed patch quantizer into token shards. First table: bytes per transition on disk, for those tokens "
    "and, as the worst case, for the same episodes with i.i.d. uniform tokens, against the raw record "
    "(36 uint16 tokens + action, reward, terminal = 78 B). Second table: segments/s (L = 8, stride 4) the "
    "segment DataLoader delivers with 0-2 workers, side by side with the segments/s one stage-2 training step "
    "consumes on the same device (forward, all losses, backward, AdamW on a real batch); "
    "ratio = loader with 1 worker / that row, so a ratio ≫ 1 on a training-step row means the loader is not the "
    "bottleneck. bf16 rows only on a GPU or a CPU with native bf16 (`common.bf16_pays`)."
)
PATCH_VOCAB = 2048  # codes of the fixed patch quantizer that tokenizes the shards
RAW_BYTES = 78  # 36 × uint16 tokens + uint8 action + float32 reward + uint8 terminal


def disk_bytes(directory: Path) -> tuple[int, int]:
    """(bytes of the .tar shards, bytes of everything in the directory)."""
    tars = sum(p.stat().st_size for p in directory.glob("*.tar"))
    return tars, sum(p.stat().st_size for p in directory.iterdir())


def uniform_token_copy(source: Path, out: Path, shard_steps: int) -> None:
    """The same episodes and shard layout with tokens drawn uniformly from the 2048 codes."""
    rng = np.random.default_rng(0)
    writers: dict[str, ShardWriter] = {}
    for episode in iter_episodes(resolve_shards(source)):
        prefix = episode.id.rsplit("/", 2)[0].replace("/", "-")
        writer = writers.setdefault(prefix, ShardWriter(out, prefix, "uniform", max_steps=shard_steps))
        tokens = rng.integers(0, PATCH_VOCAB, episode.tokens.shape).astype(np.uint16)
        writer.write(episode.id, episode.game, tokens, episode.actions, episode.rewards, episode.terminals)
        writer.roll_if_full()
    for writer in writers.values():
        writer.close()
    write_index(out)


def loader_rate(shards: Path, workers: int, batch_size: int, seconds: float) -> float:
    """Time-bounded rather than a fixed count of batches: worker startup and buffer fills vary a lot."""
    data = SegmentDataset(shards, batch_size=batch_size, stride=4, seed=0, rank=0, world_size=1)
    loader = iter(make_loader(data, num_workers=workers))
    for _ in range(3 * max(workers, 1)):  # warm-up: workers started, shuffle buffers filled
        next(loader)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        count += len(next(loader))
    rate_ = count / (time.perf_counter() - start)
    del loader
    return rate_


def model_rate(shards: Path, size: str, batch_size: int, steps: int, bf16: bool, device: torch.device) -> float:
    """Segments/s of one stage-2 step (forward, all losses, backward, AdamW) on a real batch."""
    torch.manual_seed(0)
    # The step reads the shards' tokens, so its vocabulary is the patch quantizer's (tiny's own is smaller).
    config = dataclasses.replace(load_size(size).world_model, obs_vocab_size=PATCH_VOCAB)
    model = WorldActionModel(config).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = next(iter(SegmentDataset(shards, batch_size=batch_size, seed=0, rank=0, world_size=1))).to(device)
    config = CriticLossConfig()

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            terms, _ = compute_losses(model, batch, critic=True, config=config)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()

    return batch_size / seconds_per_call(step, device, steps)


def measure(device: torch.device, games: list[str], transitions: int, shard_steps: int, batch_size: int,
            seconds: float, model_steps: int, model_size: str | None, workers: list[int]) -> list[Table]:
    """model_size None skips the training-step rows (loader only)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        progress(f"  data loader: collecting {transitions} transitions of {', '.join(games)}")
        started = time.perf_counter()
        collect(games, transitions, root / "replay", capacity=max(transitions // 2, 1000), progress=False)
        collected = time.perf_counter() - started
        started = time.perf_counter()
        report = tokenize_replay(root / "replay", "patch-quantizer", root / "tokens",
                                 max_steps_per_shard=shard_steps, progress=False)
        tokenized = time.perf_counter() - started
        uniform_token_copy(root / "tokens", root / "uniform", shard_steps)
        n = report.transitions
        data = (f"Data: {', '.join(games)}, {n} transitions, {report.episodes} episodes, {report.shards_written} "
                f"shards; collect {collected:.1f} s, tokenize {tokenized:.1f} s.")

        disk = Table(f"{TITLE}: bytes per transition on disk",
                     ["tokens", "shards B/transition", "all files B/transition", "raw B/transition",
                      "ratio raw/all files"], notes=data)
        kinds = (("patch quantizer, real frames", root / "tokens"), ("uniform random (worst)", root / "uniform"))
        for name, directory in kinds:
            tars, everything = disk_bytes(directory)
            disk.add(name, f"{tars / n:.1f}", f"{everything / n:.1f}", RAW_BYTES, ratio(RAW_BYTES * n / everything))

        speed = Table(f"{TITLE}: segments/s (batch {batch_size}, L = 8, stride 4)",
                      ["consumer", "segments/s", "ratio loader (1 worker)/this"])
        rates: dict[str, float] = {}
        for count in workers:
            progress(f"  data loader: {count} workers")
            label = f"loader, {count} worker{'' if count == 1 else 's'}" + (" (main process)" if count == 0 else "")
            rates[label] = loader_rate(root / "tokens", count, batch_size, seconds)
        one_worker = next((r for label, r in rates.items() if label.startswith("loader, 1 ")), None)
        if one_worker is None:
            one_worker = loader_rate(root / "tokens", 1, batch_size, seconds)  # the reference of the ratio column
        if model_size is not None:
            for bf16 in (False, True) if bf16_pays(device) else (False,):
                precision = "bf16 autocast" if bf16 else "fp32"
                progress(f"  data loader: {model_size} training step, {precision}")
                rates[f"{model_size} training step, {precision}"] = model_rate(
                    root / "tokens", model_size, batch_size, model_steps, bf16, device)
        for label, value in rates.items():
            speed.add(label, rate(value), ratio(one_worker / value))
    return [disk, speed]


def tables(device: torch.device, quick: bool = False) -> list[Table]:
    if quick:
        return measure(device, ["Pong", "Breakout"], 300, 200, batch_size=4, seconds=0.3, model_steps=1,
                       model_size="tiny", workers=[0, 1])
    return measure(device, ["Pong", "Breakout"], 5000, 2000, batch_size=32, seconds=4.0, model_steps=2,
                   model_size="40M", workers=[0, 1, 2])


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", default="Pong,Breakout")
    parser.add_argument("--transitions", type=int, default=5000, help="per game")
    parser.add_argument("--shard-steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=4.0, help="per loader measurement")
    parser.add_argument("--model-steps", type=int, default=2)
    parser.add_argument("--skip-model", action="store_true")
    parser.add_argument("--device", default="cpu", help="where the training step runs: cpu, cuda or auto")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    device = pick_device(args.device)
    print(f"{device_name(device)}, torch {torch.__version__}\n")
    for table in measure(device, args.games.split(","), args.transitions, args.shard_steps, args.batch_size,
                         args.seconds, args.model_steps, None if args.skip_model else "40M", [0, 1, 2]):
        print(table.to_markdown())


if __name__ == "__main__":
    main()
