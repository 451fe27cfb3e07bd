"""Token-shard loading speed (segments/s, 0-2 DataLoader workers) and bytes per transition on disk,
side by side with the segments/s one 40M stage-2 training step consumes on this machine.

    python benchmarks/data_loader.py [--games Pong,Breakout] [--transitions 5000] [--batch-size 32]

Data: real ALE play (random policy, sticky 0.25) collected into DQN-Replay files, tokenized with the fixed
patch quantizer into shards. Bytes/transition are given for those tokens and, as a worst case, for the
same episodes with i.i.d. uniform tokens (incompressible: what no trained tokenizer can exceed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from jowa.data.collect import collect  # noqa: E402
from jowa.data.segments import SegmentDataset, make_loader  # noqa: E402
from jowa.data.shards import ShardWriter, iter_episodes, resolve_shards, write_index  # noqa: E402
from jowa.data.tokenize_replay import tokenize_replay  # noqa: E402


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
        tokens = rng.integers(0, 2048, episode.tokens.shape).astype(np.uint16)
        writer.write(episode.id, episode.game, tokens, episode.actions, episode.rewards, episode.terminals)
        writer.roll_if_full()
    for writer in writers.values():
        writer.close()
    write_index(out)


def loader_rate(shards: Path, workers: int, batch_size: int, seconds: float) -> float:
    data = SegmentDataset(shards, batch_size=batch_size, stride=4, seed=0, rank=0, world_size=1)
    loader = iter(make_loader(data, num_workers=workers))
    for _ in range(3 * max(workers, 1)):  # warm-up: workers started, shuffle buffers filled
        next(loader)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        count += len(next(loader))
    rate = count / (time.perf_counter() - start)
    del loader
    return rate


def model_rate(shards: Path, batch_size: int, steps: int, bf16: bool) -> float:
    """Segments/s of one 40M stage-2 step (forward, all losses, backward, AdamW) on a real batch."""
    from jowa.config import CriticLossConfig, load_size
    from jowa.model.world_model import WorldActionModel
    from jowa.objective import compute_losses

    torch.manual_seed(0)
    model = WorldActionModel(load_size("40M").world_model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = next(iter(SegmentDataset(shards, batch_size=batch_size, seed=0, rank=0, world_size=1)))
    config = CriticLossConfig()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            terms, _ = compute_losses(model, batch, critic=True, config=config)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", default="Pong,Breakout")
    parser.add_argument("--transitions", type=int, default=5000, help="per game")
    parser.add_argument("--shard-steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=4.0, help="per loader measurement")
    parser.add_argument("--model-steps", type=int, default=2)
    parser.add_argument("--skip-model", action="store_true")
    args = parser.parse_args()
    games = args.games.split(",")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        collect(games, args.transitions, tmp / "replay", capacity=max(args.transitions // 2, 1000), progress=False)
        collected = time.perf_counter() - started
        started = time.perf_counter()
        report = tokenize_replay(tmp / "replay", "patch-quantizer", tmp / "tokens",
                                 max_steps_per_shard=args.shard_steps, progress=False)
        tokenized = time.perf_counter() - started
        uniform_token_copy(tmp / "tokens", tmp / "uniform", args.shard_steps)
        n = report.transitions
        print(f"data: {', '.join(games)}, {n} transitions, {report.episodes} episodes, {report.shards_written} shards; "
              f"collect {collected:.1f}s, tokenize {tokenized:.1f}s; CPU threads {torch.get_num_threads()}\n")

        print("| tokens | shards B/transition | all files B/transition | raw (72+6 B) |")
        print("|---|---:|---:|---:|")
        kinds = (("patch quantizer, real frames", tmp / "tokens"), ("uniform random (worst)", tmp / "uniform"))
        for name, directory in kinds:
            tars, everything = disk_bytes(directory)
            print(f"| {name} | {tars / n:.1f} | {everything / n:.1f} | 78 |")

        print(f"\n| consumer | segments/s (batch {args.batch_size}, L=8, stride 4) |")
        print("|---|---:|")
        rates = {}
        for workers in (0, 1, 2):
            rates[workers] = loader_rate(tmp / "tokens", workers, args.batch_size, args.seconds)
            print(f"| loader, {workers} workers{' (main process)' if workers == 0 else ''} | {rates[workers]:,.0f} |",
                  flush=True)
        if not args.skip_model:
            for bf16 in (False, True):
                need = model_rate(tmp / "tokens", args.batch_size, args.model_steps, bf16)
                label = "bf16 autocast" if bf16 else "fp32"
                print(f"| 40M training step, {label} | {need:,.1f} |", flush=True)
                print(f"| → loader (1 worker) / step | {rates[1] / need:,.0f}× |")


if __name__ == "__main__":
    main()
