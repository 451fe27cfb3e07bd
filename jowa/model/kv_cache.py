"""Key/value cache for incremental decoding, with batch reordering for beam search."""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F


class AttentionCache(Protocol):
    """What the transformer needs from a cache: attention over cached + new keys, and bookkeeping."""

    length: int

    def check_room(self, num_new: int) -> None: ...

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float) -> torch.Tensor: ...

    def advance(self, num_new: int) -> None: ...


def causal_mask(num_new: int, num_cached: int, device: torch.device) -> torch.Tensor | None:
    """[n, L+n] bool, bottom-right aligned: new token i (absolute L+i) sees keys <= L+i.

    None where no mask is needed (a single new token sees everything cached).
    """
    if num_new == 1:
        return None
    rows = torch.arange(num_new, device=device)[:, None] + num_cached
    return torch.arange(num_cached + num_new, device=device)[None, :] <= rows


class KVCache:
    """Keys and values of every layer in one preallocated tensor pair.

    Layout `[layers, batch, heads, capacity, head_dim]`: one `index_select` on the batch axis
    replicates or reorders every layer at once, which is what beam expansion needs.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int = 0) -> None:
        self.keys = keys  # [L, B, H, capacity, hd]
        self.values = values  # [L, B, H, capacity, hd]
        self.length = length

    @classmethod
    def empty(
        cls, num_layers: int, batch_size: int, num_heads: int, head_dim: int, capacity: int,
        device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
    ) -> "KVCache":
        shape = (num_layers, batch_size, num_heads, capacity, head_dim)
        return cls(torch.empty(shape, device=device, dtype=dtype), torch.empty(shape, device=device, dtype=dtype))

    @property
    def batch_size(self) -> int:
        return self.keys.shape[1]

    @property
    def capacity(self) -> int:
        return self.keys.shape[3]

    def check_room(self, num_new: int) -> None:
        if self.length + num_new > self.capacity:
            raise ValueError(f"KV cache overflow: {self.length} + {num_new} tokens > capacity {self.capacity}")

    def write(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new `[B, H, n, hd]` keys/values of `layer` after the cached ones; return all of them."""
        end = self.length + keys.shape[2]
        self.keys[layer, :, :, self.length:end] = keys.to(self.keys.dtype)
        self.values[layer, :, :, self.length:end] = values.to(self.values.dtype)
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float) -> torch.Tensor:
        """Store the new `[B, H, n, hd]` keys/values, then attend causally over all of them -> [B, H, n, hd]."""
        num_cached = self.length
        keys, values = self.write(layer, k, v)
        if num_cached == 0:
            return F.scaled_dot_product_attention(q, keys, values, dropout_p=dropout, is_causal=q.shape[2] > 1)
        mask = causal_mask(q.shape[2], num_cached, q.device)
        return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, dropout_p=dropout)

    def advance(self, num_new: int) -> None:
        self.length += num_new

    def select(self, index: torch.Tensor) -> "KVCache":
        """A new cache whose row i is row `index[i]` of this one (replicate with repeat_interleave indices)."""
        return KVCache(select_rows(self.keys, index, self.length), select_rows(self.values, index, self.length), self.length)


def select_rows(cache: torch.Tensor, index: torch.Tensor, length: int) -> torch.Tensor:
    """[L, B, H, capacity, hd] -> [L, len(index), H, capacity, hd], copying only the first `length` tokens."""
    out = cache.new_empty((cache.shape[0], index.numel(), *cache.shape[2:]))
    out[:, :, :, :length] = cache[:, :, :, :length].index_select(1, index)
    return out
