"""Throughput bookkeeping: tokens/s, data-wait time and an MFU estimate on GPU."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from jowa.config import WorldModelConfig

# Dense bf16 peak FLOP/s (no sparsity) by device-name fragment, most specific first.
PEAK_BF16: tuple[tuple[str, float], ...] = (
    ("H200", 989e12), ("H100", 989e12), ("GH200", 989e12), ("A100", 312e12), ("A800", 312e12),
    ("L40S", 362e12), ("L40", 181e12), ("A6000", 155e12), ("A10", 125e12), ("4090", 165e12), ("3090", 71e12),
)


def peak_flops(device: torch.device) -> float | None:
    """Per-device dense bf16 peak, or None off GPU / for an unknown GPU (then no MFU is logged)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for fragment, peak in PEAK_BF16 if fragment in name), None)


# The fraction of a window's positions each head reads (docs/official_jowa.md §4): observation logits at
# 36 of 37 offsets, rewards/ends at the action token, the Q heads at the last observation token.
def _head_shares(tokens_per_block: int) -> dict[str, float]:
    one = 1.0 / tokens_per_block
    return {"head_observations": 1.0 - one, "head_rewards": one, "head_ends": one, "head_q": one, "head_q_target": one}


def world_flops_per_token(model: nn.Module, config: WorldModelConfig) -> float:
    """Training FLOPs per token: 6·N for the backbone's weights (forward + backward, embeddings excluded),
    each head's weights times the share of positions it runs on (6·N, or 2·N for the target head, which
    only runs forward), plus 12·layers·d·context for attention scores and values (PaLM, appendix B)."""
    shares = _head_shares(config.tokens_per_block)
    total = 12.0 * config.num_layers * config.embed_dim * config.max_tokens
    for name, child in model.named_children():
        weights = sum(p.numel() for m in child.modules() if not isinstance(m, nn.Embedding)
                      for p in m.parameters(recurse=False))
        total += (2.0 if name == "head_q_target" else 6.0) * weights * shares.get(name, 1.0)
    return total


@dataclass
class Meter:
    """Accumulates work between two log points."""

    tokens: float = 0.0
    items: float = 0.0
    data_wait: float = 0.0
    steps: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, tokens: float, items: float, data_wait: float) -> None:
        self.tokens += tokens
        self.items += items
        self.data_wait += data_wait
        self.steps += 1

    def report(self, world_size: int, flops_per_token: float | None, peak: float | None) -> dict[str, float]:
        """Global rates (this rank's work × world size: every rank processes the same amount)."""
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        tokens_per_s = self.tokens * world_size / elapsed
        values = {
            "throughput/tokens_per_s": tokens_per_s,
            "throughput/items_per_s": self.items * world_size / elapsed,
            "throughput/data_wait_s_per_step": self.data_wait / max(self.steps, 1),
            "throughput/data_wait_fraction": self.data_wait / elapsed,
        }
        if flops_per_token and peak:
            values["throughput/mfu"] = tokens_per_s * flops_per_token / (peak * world_size)
        return values
