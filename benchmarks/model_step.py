"""Tokens/s of one stage-2 training step (forward, all losses, backward, AdamW).

    python benchmarks/model_step.py [--sizes tiny,40M] [--batches 8,16] [--steps 3]

Each row is measured side by side with a straightforward implementation of the same step: the
attention written out as matmul → mask → softmax → matmul (the official non-flash path) and the Q
ensemble evaluated one member at a time. Ratios > 1 mean ours is faster.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402

from benchmarks.common import (  # noqa: E402
    Table, bf16_pays, device_name, pick_device, progress, rate, ratio, seconds_per_call,
)
from jowa.config import CriticLossConfig, load_size  # noqa: E402
from jowa.data.batch import Batch  # noqa: E402
from jowa.model.heads import QEnsemble  # noqa: E402
from jowa.model.world_model import WorldActionModel  # noqa: E402
from jowa.objective import compute_losses  # noqa: E402

TITLE = "Stage-2 training step"
SUMMARY = (
    "Tokens/s of one stage-2 training step on a fixed random batch of 8-step segments (37 tokens per step): "
    "forward, every loss (world model, TD, CQL), backward, gradient clipping and AdamW. The baseline is the "
    "same step written the straightforward way, measured right after in the same run: attention as "
    "matmul → mask → softmax → matmul (the official non-flash path) and the Q ensemble evaluated one member "
    "at a time. ratio = ours / straightforward (> 1: ours is faster). bf16 rows only on a GPU or a CPU with "
    "native bf16 (`common.bf16_pays`)."
)
SEGMENT_STEPS = 8
TOKENS_PER_STEP = 37


def random_batch(batch_size: int, vocab: int, device: torch.device, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch_size, SEGMENT_STEPS, dtype=torch.bool)
    mask[0, 5:] = False  # one padded row so every loss path runs
    ends = torch.zeros(batch_size, SEGMENT_STEPS, dtype=torch.long)
    ends[min(1, batch_size - 1), -1] = 1
    return Batch(
        observations=torch.randint(0, vocab, (batch_size, SEGMENT_STEPS, 36), generator=g),
        actions=torch.randint(0, 18, (batch_size, SEGMENT_STEPS), generator=g),
        rewards=torch.randint(-1, 2, (batch_size, SEGMENT_STEPS), generator=g).float(),
        ends=ends, mask_padding=mask, tasks=torch.randint(0, 60, (batch_size,), generator=g),
    ).to(device)


def _member_by_member(self: QEnsemble, x: torch.Tensor) -> torch.Tensor:
    outs = []
    for m in range(self.num_members):
        p = [t[m] for t in self.params]
        h = F.mish(F.layer_norm(self.dropout(F.linear(x, p[0], p[1])), p[0].shape[:1], p[2], p[3]))
        h = F.mish(F.layer_norm(F.linear(h, p[4], p[5]), p[4].shape[:1], p[6], p[7]))
        outs.append(F.linear(h, p[8], p[9]))
    return torch.stack(outs)


@contextlib.contextmanager
def straightforward() -> Iterator[None]:
    """Swap in the naive ensemble loop and the math (explicit-mask) attention kernel."""
    original = QEnsemble.forward
    QEnsemble.forward = _member_by_member  # type: ignore[method-assign]
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        QEnsemble.forward = original  # type: ignore[method-assign]


def training_step(size: str, batch_size: int, bf16: bool, device: torch.device) -> Callable[[], None]:
    """One stage-2 training step of a fresh `size` model on a fixed random batch, as a call."""
    torch.manual_seed(0)
    model = WorldActionModel(load_size(size).world_model).to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch = random_batch(batch_size, model.config.obs_vocab_size, device)
    config = CriticLossConfig()

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            terms, _ = compute_losses(model, batch, critic=True, config=config)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return step


def tokens_per_second(size: str, batch_size: int, bf16: bool, steps: int, device: torch.device) -> float:
    step = training_step(size, batch_size, bf16, device)
    return batch_size * SEGMENT_STEPS * TOKENS_PER_STEP / seconds_per_call(step, device, steps)


def measure(device: torch.device, sizes: list[str], batches: list[int], steps: int) -> Table:
    table = Table(f"{TITLE}, tokens/s", ["size", "batch", "precision", "jowa tokens/s", "straightforward tokens/s",
                                         "ratio"])
    for size in sizes:
        for batch_size in batches:
            for bf16 in (False, True) if bf16_pays(device) else (False,):
                precision = "bf16 autocast" if bf16 else "fp32"
                progress(f"  model step: {size}, batch {batch_size}, {precision}")
                ours = tokens_per_second(size, batch_size, bf16, steps, device)
                with straightforward():
                    naive = tokens_per_second(size, batch_size, bf16, steps, device)
                table.add(size, batch_size, precision, rate(ours), rate(naive), ratio(ours / naive))
    return table


def tables(device: torch.device, quick: bool = False) -> list[Table]:
    if quick:
        return [measure(device, ["tiny"], [2], steps=1)]
    sizes = ["tiny", "40M", "150M"] if device.type == "cuda" else ["tiny", "40M"]
    return [measure(device, sizes, [8, 16], steps=3)]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="tiny,40M")
    parser.add_argument("--batches", default="8,16")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    device = pick_device(args.device)
    print(f"{device_name(device)}, torch {torch.__version__}\n")
    table = measure(device, args.sizes.split(","), [int(b) for b in args.batches.split(",")], args.steps)
    print(table.to_markdown())


if __name__ == "__main__":
    main()
