"""Tokens/s of one stage-2 training step (forward, all losses, backward, AdamW).

    python benchmarks/model_step.py [--sizes tiny,40M] [--batches 8,16] [--steps 3]

Each row is measured side by side with a straightforward implementation of the same step: the
attention written out as matmul → mask → softmax → matmul (the official non-flash path) and the Q
ensemble evaluated one member at a time. Ratios > 1 mean ours is faster.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Iterator

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from jowa.config import CriticLossConfig, load_size
from jowa.data.batch import Batch
from jowa.model.heads import QEnsemble
from jowa.model.world_model import WorldActionModel
from jowa.objective import compute_losses


def random_batch(batch_size: int, vocab: int, device: torch.device, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    steps = 8
    mask = torch.ones(batch_size, steps, dtype=torch.bool)
    mask[0, 5:] = False  # one padded row so every loss path runs
    ends = torch.zeros(batch_size, steps, dtype=torch.long)
    ends[1, -1] = 1
    return Batch(
        observations=torch.randint(0, vocab, (batch_size, steps, 36), generator=g),
        actions=torch.randint(0, 18, (batch_size, steps), generator=g),
        rewards=torch.randint(-1, 2, (batch_size, steps), generator=g).float(),
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


def tokens_per_second(size: str, batch_size: int, bf16: bool, steps: int, device: torch.device) -> float:
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

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size * 8 * 37 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="tiny,40M")
    parser.add_argument("--batches", default="8,16")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"stage-2 training step, tokens/s ({name}, torch {torch.__version__})\n")
    print(f"| size | batch | precision | jowa tokens/s | straightforward tokens/s | ratio |")
    print(f"|---|---:|---|---:|---:|---:|")
    for size in args.sizes.split(","):
        for batch_size in map(int, args.batches.split(",")):
            for bf16 in (False, True):
                ours = tokens_per_second(size, batch_size, bf16, args.steps, device)
                with straightforward():
                    naive = tokens_per_second(size, batch_size, bf16, args.steps, device)
                precision = "bf16 autocast" if bf16 else "fp32"
                print(f"| {size} | {batch_size} | {precision} | {ours:,.0f} | {naive:,.0f} | {ours / naive:.2f} |", flush=True)


if __name__ == "__main__":
    main()
