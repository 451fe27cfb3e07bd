"""Pre-LN GPT backbone (minGPT/IRIS layout, official key names) on PyTorch SDPA."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jowa.config import WorldModelConfig
from jowa.model.kv_cache import AttentionCache, KVCache


class SelfAttention(nn.Module):
    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        if config.embed_dim % config.num_heads:
            raise ValueError(f"embed_dim {config.embed_dim} is not divisible by num_heads {config.num_heads}")
        self.num_heads = config.num_heads
        self.key = nn.Linear(config.embed_dim, config.embed_dim)
        self.query = nn.Linear(config.embed_dim, config.embed_dim)
        self.value = nn.Linear(config.embed_dim, config.embed_dim)
        self.proj = nn.Linear(config.embed_dim, config.embed_dim)
        self.attn_pdrop = config.attn_pdrop
        self.resid_drop = nn.Dropout(config.resid_pdrop)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # [B, n, d] -> [B, H, n, hd]
        batch, length, dim = x.shape
        return x.view(batch, length, self.num_heads, dim // self.num_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, cache: AttentionCache | None = None, layer: int = 0) -> torch.Tensor:
        batch, length, dim = x.shape  # x: [B, n, d]
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        dropout = self.attn_pdrop if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=length > 1)
        else:
            y = cache.attend(layer, q, k, v, dropout)
        y = y.transpose(1, 2).reshape(batch, length, dim)
        return self.resid_drop(self.proj(y))


class Block(nn.Module):
    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.embed_dim)
        self.ln2 = nn.LayerNorm(config.embed_dim)
        self.attn = SelfAttention(config)
        self.mlp = nn.Sequential(
            nn.Linear(config.embed_dim, 4 * config.embed_dim),
            nn.GELU(),
            nn.Linear(4 * config.embed_dim, config.embed_dim),
            nn.Dropout(config.resid_pdrop),
        )

    def forward(self, x: torch.Tensor, cache: AttentionCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache, layer)
        return x + self.mlp(self.ln2(x))


class Transformer(nn.Module):
    def __init__(self, config: WorldModelConfig) -> None:
        super().__init__()
        self.config = config
        self.drop = nn.Dropout(config.embed_pdrop)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.num_layers)])
        self.ln_f = nn.LayerNorm(config.embed_dim)

    def empty_cache(self, batch_size: int, device: torch.device | str, dtype: torch.dtype = torch.float32) -> KVCache:
        c = self.config
        return KVCache.empty(c.num_layers, batch_size, c.num_heads, c.embed_dim // c.num_heads, c.max_tokens, device, dtype)

    def forward(self, embeddings: torch.Tensor, cache: AttentionCache | None = None) -> torch.Tensor:
        """[B, n, d] input embeddings -> [B, n, d] after ln_f. With a cache, appends n tokens to it."""
        if cache is not None:
            cache.check_room(embeddings.shape[1])
        x = self.drop(embeddings)
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer)
        if cache is not None:
            cache.advance(embeddings.shape[1])
        return self.ln_f(x)
