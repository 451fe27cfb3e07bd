"""How much of the codebook a tokenizer uses on a fixed sample of frames."""

from __future__ import annotations

import math

import numpy as np
import torch


def code_usage(tokens: torch.Tensor | np.ndarray, vocab_size: int) -> dict[str, float]:
    """tokens [...] int codes → distinct codes used, that count / vocab_size, and the perplexity
    exp(H) of the code histogram (1 = one code everywhere, vocab_size = all codes equally often)."""
    counts = np.bincount(np.asarray(tokens).reshape(-1).astype(np.int64), minlength=vocab_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    used = int((counts > 0).sum())
    return {"codes_used": float(used), "code_usage": used / vocab_size,
            "code_perplexity": math.exp(float(-(p * np.log(p)).sum()))}
