"""Input embedding: token + position + task, with separate tables for action and observation positions."""

from __future__ import annotations

import torch
from torch import nn


class TypedEmbedding(nn.Module):
    """Two tables: `embedding_tables.0` at action positions, `embedding_tables.1` at observation positions."""

    def __init__(self, num_action_rows: int, num_obs_rows: int, dim: int) -> None:
        super().__init__()
        self.embedding_tables = nn.ModuleList([nn.Embedding(num_action_rows, dim), nn.Embedding(num_obs_rows, dim)])

    def forward(self, ids: torch.Tensor, is_action: torch.Tensor) -> torch.Tensor:
        """ids: [B, n] (or [B, 1] broadcast over positions), is_action: [n] -> [B, n, d]."""
        actions, observations = self.embedding_tables
        # Both lookups are cheap; clamping keeps the unused lookup in range (observation ids exceed 17).
        as_action = actions(ids.clamp(max=actions.num_embeddings - 1))
        as_obs = observations(ids.clamp(max=observations.num_embeddings - 1))
        return torch.where(is_action[:, None], as_action, as_obs)
