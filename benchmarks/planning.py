"""Planning decisions/s: one batched call for E environments vs the same search one environment at a time.

    python benchmarks/planning.py [--sizes tiny,40M] [--envs 1,16] [--repeats 2]

Context 6 blocks; (K, H) in {(2, 2), (4, 2)}; every environment a different game (with 18 valid
actions, so K' = K). The one-at-a-time baseline uses the plain KV cache (the official structure);
the speed-up column is batched with the shared-prefix cache over that baseline. Randomly initialised weights: the cost of a search does not depend on them.
"""

from __future__ import annotations

import argparse
import time

import torch

from jowa.config import load_size
from jowa.games import MINIMAL_ACTION_SETS, task_id
from jowa.model.world_model import WorldActionModel
from jowa.planning import PlannerOptions, plan

FULL_ACTION_GAMES = [g for g, acts in MINIMAL_ACTION_SETS.items() if len(acts) == 18]


def contexts_for(count: int, blocks: int, vocab: int, device: torch.device) -> tuple[list[torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    contexts = []
    for _ in range(count):
        obs = torch.randint(0, vocab, (blocks, 36), generator=g)
        acts = torch.randint(0, 18, (blocks, 1), generator=g)
        contexts.append(torch.cat([obs, acts], 1).flatten()[:-1].to(device))
    tasks = torch.tensor([task_id(FULL_ACTION_GAMES[i % len(FULL_ACTION_GAMES)]) for i in range(count)])
    return contexts, tasks


def decisions_per_second(model, contexts, tasks, options, batched: bool, repeats: int, dtype) -> float:
    device = model.atoms.device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")

    def run() -> None:
        with autocast:
            if batched:
                plan(model, contexts, tasks, options)
            else:
                for i, context in enumerate(contexts):
                    plan(model, [context], tasks[i:i + 1], options)

    run()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return repeats * len(contexts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="tiny,40M")
    parser.add_argument("--envs", default="1,16")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"beam-search decisions/s, context 6 blocks ({name}, {args.dtype}, torch {torch.__version__})\n")
    print("| size | E | K | H | batched, shared prefix | batched, plain cache | one env at a time, plain cache | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes.split(","):
        torch.manual_seed(0)
        model = WorldActionModel(load_size(size).world_model).to(device).eval()
        for count in map(int, args.envs.split(",")):
            contexts, tasks = contexts_for(count, 6, model.config.obs_vocab_size, device)
            for k in (2, 4):
                shared = PlannerOptions(beam_width=k, horizon=2, shared_prefix=True)
                plain = PlannerOptions(beam_width=k, horizon=2, shared_prefix=False)
                batched = decisions_per_second(model, contexts, tasks, shared, True, args.repeats, args.dtype)
                batched_plain = decisions_per_second(model, contexts, tasks, plain, True, args.repeats, args.dtype)
                single = decisions_per_second(model, contexts, tasks, plain, False, args.repeats, args.dtype)
                print(f"| {size} | {count} | {k} | 2 | {batched:.2f} | {batched_plain:.2f} | {single:.2f} "
                      f"| {batched / single:.1f}× |", flush=True)


if __name__ == "__main__":
    main()
