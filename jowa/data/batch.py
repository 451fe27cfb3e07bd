"""The training batch: right-padded segments of L steps, in the layout the losses take (docs/official_jowa.md §1.5)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class Batch:
    """B segments of T steps. Padded steps hold token 0, action 0, reward 0, end 0 and mask False."""

    observations: torch.Tensor  # [B, T, 36] int64 observation tokens
    actions: torch.Tensor  # [B, T] int64 full-set action index (0..17)
    rewards: torch.Tensor  # [B, T] float32 reward as stored (DQN-Replay: clipped to [-1, 1])
    ends: torch.Tensor  # [B, T] int64 terminal flag in {0, 1}; at most one per row, at its last valid step
    mask_padding: torch.Tensor  # [B, T] bool, True for real steps (a contiguous prefix of each row)
    tasks: torch.Tensor  # [B] int64 task id (index into jowa.games.GAME_NAMES)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        return Batch(**{f.name: getattr(self, f.name).to(device, non_blocking=non_blocking) for f in fields(self)})

    @property
    def batch_size(self) -> int:
        return self.actions.shape[0]

    @property
    def num_steps(self) -> int:
        return self.actions.shape[1]

    def __len__(self) -> int:
        return self.batch_size
