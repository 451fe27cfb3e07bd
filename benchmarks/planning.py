"""Planning decisions/s: one batched call for E environments vs the same search one environment at a time.

    python benchmarks/planning.py [--sizes tiny,40M] [--envs 1,16] [--repeats 2] [--dtype fp32|bf16]

Context 6 blocks; (K, H) in {(2, 2), (4, 2)}; every environment a different game (with 18 valid
actions, so K' = K). The one-at-a-time baseline uses the plain KV cache (the official structure);
the ratio column is the planner's default batched call (the shared-prefix cache when the call holds
several environments, the plain cache for one) over that baseline. Randomly initialised weights: the
cost of a search does not depend on them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from benchmarks.common import Table, device_name, pick_device, progress, rate, ratio, seconds_per_call  # noqa: E402
from jowa.config import load_size  # noqa: E402
from jowa.games import MINIMAL_ACTION_SETS, task_id  # noqa: E402
from jowa.model.world_model import WorldActionModel  # noqa: E402
from jowa.planning import BeamSearch, plan  # noqa: E402

TITLE = "Planning (beam search)"
SUMMARY = (
    "Decisions/s of the beam-search planner (context 6 blocks, horizon H = 2, beam width K ∈ {2, 4}, every "
    "environment a different game with 18 valid actions; randomly initialised weights, since the cost of a "
    "search does not depend on them). Ours plans all E environments in one batched call, with the shared-prefix "
    "KV cache or the plain cache (both measured); by default the planner uses the shared prefix when the call "
    "holds several environments and the plain cache for one (`BeamSearch.shared_prefix=None`). The baseline is "
    "the official structure: one environment at a time with the plain KV cache, measured in the same run. "
    "ratio = the default batched call / one at a time."
)
FULL_ACTION_GAMES = [g for g, acts in MINIMAL_ACTION_SETS.items() if len(acts) == 18]
CONTEXT_BLOCKS = 6
HORIZON = 2


def contexts_for(count: int, blocks: int, vocab: int, device: torch.device) -> tuple[list[torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    contexts = []
    for _ in range(count):
        obs = torch.randint(0, vocab, (blocks, 36), generator=g)
        acts = torch.randint(0, 18, (blocks, 1), generator=g)
        contexts.append(torch.cat([obs, acts], 1).flatten()[:-1].to(device))
    tasks = torch.tensor([task_id(FULL_ACTION_GAMES[i % len(FULL_ACTION_GAMES)]) for i in range(count)])
    return contexts, tasks


def decisions_per_second(model: WorldActionModel, contexts: list[torch.Tensor], tasks: torch.Tensor,
                         options: BeamSearch, batched: bool, repeats: int, dtype: str) -> float:
    device = model.atoms.device

    def run() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            if batched:
                plan(model, contexts, tasks, options)
            else:
                for i, context in enumerate(contexts):
                    plan(model, [context], tasks[i:i + 1], options)

    return len(contexts) / seconds_per_call(run, device, repeats)


def measure(device: torch.device, sizes: list[str], envs: list[int], repeats: int, dtypes: list[str],
            beam_widths: tuple[int, ...] = (2, 4)) -> Table:
    table = Table(f"{TITLE}, decisions/s, context {CONTEXT_BLOCKS} blocks",
                  ["size", "precision", "E", "K", "H", "batched, shared prefix", "batched, plain cache",
                   "one env at a time, plain cache", "ratio (default batched / one at a time)"])
    for size in sizes:
        torch.manual_seed(0)
        model = WorldActionModel(load_size(size).world_model).to(device).eval()
        for dtype in dtypes:
            for count in envs:
                contexts, tasks = contexts_for(count, CONTEXT_BLOCKS, model.config.obs_vocab_size, device)
                for k in beam_widths:
                    progress(f"  planning: {size}, {dtype}, E={count}, K={k}")
                    shared = BeamSearch(beam_width=k, horizon=HORIZON, shared_prefix=True)
                    plain = BeamSearch(beam_width=k, horizon=HORIZON, shared_prefix=False)
                    batched = decisions_per_second(model, contexts, tasks, shared, True, repeats, dtype)
                    batched_plain = decisions_per_second(model, contexts, tasks, plain, True, repeats, dtype)
                    single = decisions_per_second(model, contexts, tasks, plain, False, repeats, dtype)
                    default_shares = BeamSearch(beam_width=k, horizon=HORIZON).shares_prefix(count)
                    default = batched if default_shares else batched_plain
                    table.add(size, dtype, count, k, HORIZON, rate(batched), rate(batched_plain), rate(single),
                              ratio(default / single))
    return table


def tables(device: torch.device, quick: bool = False) -> list[Table]:
    if quick:
        return [measure(device, ["tiny"], [1, 2], repeats=1, dtypes=["fp32"], beam_widths=(2,))]
    sizes = ["tiny", "40M", "150M"] if device.type == "cuda" else ["tiny", "40M"]
    dtypes = ["fp32", "bf16"] if device.type == "cuda" else ["fp32"]
    return [measure(device, sizes, [1, 16], repeats=2, dtypes=dtypes)]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="tiny,40M")
    parser.add_argument("--envs", default="1,16")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    device = pick_device(args.device)
    print(f"{device_name(device)}, torch {torch.__version__}\n")
    table = measure(device, args.sizes.split(","), [int(e) for e in args.envs.split(",")], args.repeats, [args.dtype])
    print(table.to_markdown())


if __name__ == "__main__":
    main()
