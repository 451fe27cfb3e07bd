"""A KV cache for beam search whose rows share their environment's context prefix.

Every node of an environment's search tree starts from the same real context (up to 221 tokens);
only the imagined tail (≤ 74 tokens at H = 2) differs between rows. A plain cache stores and reads
the prefix once per row, so single-token decoding is bound by memory traffic that grows with the
number of rows, and each beam step copies every row's whole cache. Here the prefix is stored once
per environment and attended with one grouped matmul per environment; only the tails are per row,
so beam reordering copies tails only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from jowa.model.kv_cache import KVCache, causal_mask, select_rows


class SharedPrefixCache:
    """Rows grouped by environment (row_env ascending) over per-environment prefixes."""

    def __init__(self, prefix: KVCache, row_env: torch.Tensor, tail_keys: torch.Tensor, tail_values: torch.Tensor,
                 tail_length: int = 0) -> None:
        if row_env.numel() and bool((row_env[1:] < row_env[:-1]).any()):
            raise ValueError("rows must be grouped by environment (row_env ascending)")
        self.prefix = prefix  # [L, E, H, capacity, hd] with prefix.length valid tokens
        self.row_env = row_env  # [R]
        self.tail_keys = tail_keys  # [L, R, H, tail capacity, hd]
        self.tail_values = tail_values
        self.tail_length = tail_length
        counts = torch.bincount(row_env, minlength=prefix.batch_size)
        starts = torch.cumsum(counts, 0) - counts
        self._rank = torch.arange(len(row_env), device=row_env.device) - starts[row_env]  # row's place in its env
        self._width = int(counts.max()) if len(row_env) else 0
        # Every environment holds the same number of rows (the usual beam): grouping is a reshape, no padding.
        self._uniform = len(row_env) == prefix.batch_size * self._width

    @classmethod
    def from_prefix(cls, prefix: KVCache) -> "SharedPrefixCache":
        """One row per environment of a filled cache; the tails start empty."""
        layers, envs, heads, capacity, head_dim = prefix.keys.shape
        shape = (layers, envs, heads, capacity - prefix.length, head_dim)
        tails = prefix.keys.new_empty(shape), prefix.values.new_empty(shape)
        return cls(prefix, torch.arange(envs, device=prefix.keys.device), *tails)

    @property
    def length(self) -> int:
        return self.prefix.length + self.tail_length

    @property
    def batch_size(self) -> int:
        return len(self.row_env)

    def check_room(self, num_new: int) -> None:
        if self.tail_length + num_new > self.tail_keys.shape[3]:
            raise ValueError(f"KV cache overflow: {self.length} + {num_new} tokens > capacity {self.prefix.capacity}")

    def advance(self, num_new: int) -> None:
        self.tail_length += num_new

    def select(self, index: torch.Tensor) -> "SharedPrefixCache":
        """Row i of the result is row `index[i]`; `index` must keep rows grouped by environment."""
        keys = select_rows(self.tail_keys, index, self.tail_length)
        values = select_rows(self.tail_values, index, self.tail_length)
        return SharedPrefixCache(self.prefix, self.row_env[index], keys, values, self.tail_length)

    def _grouped(self, x: torch.Tensor) -> torch.Tensor:
        """[R, H, n, c] -> [E, H, W·n, c]: each environment's rows side by side (zero-padded to W rows)."""
        rows, heads, n, c = x.shape
        if self._uniform:
            return x.view(self.prefix.batch_size, self._width, heads, n, c).transpose(1, 2).reshape(
                self.prefix.batch_size, heads, self._width * n, c)
        padded = x.new_zeros(self.prefix.batch_size, self._width, heads, n, c)
        padded[self.row_env, self._rank] = x
        return padded.permute(0, 2, 1, 3, 4).reshape(self.prefix.batch_size, heads, self._width * n, c)

    def _ungrouped(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """Inverse of `_grouped`: [E, H, W·n, c] -> [R, H, n, c]."""
        envs, heads, _, c = x.shape
        x = x.view(envs, heads, self._width, n, c).transpose(1, 2)
        if self._uniform:
            return x.reshape(envs * self._width, heads, n, c)
        return x[self.row_env, self._rank]

    def attend(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float) -> torch.Tensor:
        """q, k, v [R, H, n, hd] of the new tokens -> attention output [R, H, n, hd]."""
        n = q.shape[2]
        end = self.tail_length + n
        self.tail_keys[layer, :, :, self.tail_length:end] = k.to(self.tail_keys.dtype)
        self.tail_values[layer, :, :, self.tail_length:end] = v.to(self.tail_values.dtype)
        if n == 1 and self._uniform and q.dtype == self.tail_keys.dtype:
            return self._attend_one(layer, q, end)
        prefix_keys = self.prefix.keys[layer, :, :, : self.prefix.length]  # [E, H, P, hd]
        prefix_values = self.prefix.values[layer, :, :, : self.prefix.length]
        tail_keys, tail_values = self.tail_keys[layer, :, :, :end], self.tail_values[layer, :, :, :end]
        scale = 1.0 / math.sqrt(q.shape[-1])
        # Scores against the shared prefix: one matmul per environment for all of its rows.
        prefix_scores = self._ungrouped(self._grouped(q) @ prefix_keys.transpose(-1, -2).to(q.dtype), n)  # [R, H, n, P]
        tail_scores = q @ tail_keys.transpose(-1, -2).to(q.dtype)  # [R, H, n, T]
        mask = causal_mask(n, self.tail_length, q.device)
        if mask is not None:
            tail_scores = tail_scores.masked_fill(~mask, float("-inf"))
        weights = torch.cat([prefix_scores, tail_scores], dim=-1).mul(scale).softmax(dim=-1)
        weights = F.dropout(weights, dropout) if dropout > 0 else weights
        prefix_weights, tail_weights = weights.split([prefix_scores.shape[-1], tail_scores.shape[-1]], dim=-1)
        from_prefix = self._ungrouped(self._grouped(prefix_weights) @ prefix_values.to(q.dtype), n)
        return from_prefix + tail_weights @ tail_values.to(q.dtype)

    def _attend_one(self, layer: int, q: torch.Tensor, end: int) -> torch.Tensor:
        """`attend` for one new token per row when every environment has W rows: the same matmuls on
        3-d views ([E·H, W, ·] against the prefix, [R·H, 1, ·] against the tails), a quarter of the ops.

        Decoding is bound by per-op overhead at beam sizes (a few rows of 128 features on a CPU)."""
        rows, heads, _, head_dim = q.shape
        envs, width, length = self.prefix.batch_size, self._width, self.prefix.length
        prefix_keys = self.prefix.keys[layer, :, :, :length].flatten(0, 1)  # [E·H, P, hd]
        prefix_values = self.prefix.values[layer, :, :, :length].flatten(0, 1)
        tail_keys = self.tail_keys[layer, :, :, :end].flatten(0, 1)  # [R·H, T, hd]
        tail_values = self.tail_values[layer, :, :, :end].flatten(0, 1)

        def by_env(x: torch.Tensor) -> torch.Tensor:  # [R·H, 1, c] -> [E·H, W, c]
            return x.view(envs, width, heads, -1).transpose(1, 2).reshape(envs * heads, width, -1)

        def by_row(x: torch.Tensor) -> torch.Tensor:  # [E·H, W, c] -> [R·H, 1, c]
            return x.view(envs, heads, width, -1).transpose(1, 2).reshape(rows * heads, 1, -1)

        q_rows = q.reshape(rows * heads, 1, head_dim)
        prefix_scores = torch.bmm(by_env(q_rows), prefix_keys.transpose(1, 2))  # [E·H, W, P]
        tail_scores = by_env(torch.bmm(q_rows, tail_keys.transpose(1, 2)))  # [E·H, W, T]
        weights = torch.cat([prefix_scores, tail_scores], dim=-1).mul(1.0 / math.sqrt(head_dim)).softmax(dim=-1)
        from_prefix = by_row(torch.bmm(weights[..., :length], prefix_values))
        from_tail = torch.bmm(by_row(weights[..., length:]), tail_values)
        return (from_prefix + from_tail).view(rows, heads, 1, head_dim)

