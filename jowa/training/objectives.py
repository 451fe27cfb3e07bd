"""The modules an engine wraps: forward(batch) → the loss to optimise and the terms to log.

Wrapping the objective (not the bare model) is what makes the forward pass run *through* DDP /
DeepSpeed, so their gradient hooks fire. The official code called `.module.compute_loss(...)` on
its DDP wrapper, which bypasses them and leaves every rank training alone (docs/official_jowa.md §6.3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from jowa.config import CriticLossConfig
from jowa.data.batch import Batch
from jowa.model.world_model import WorldActionModel
from jowa.objective import compute_losses


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor  # 0-dim, what is optimised
    terms: dict[str, torch.Tensor]  # detached 0-dim tensors, logged (no host sync here)


class WorldObjective(nn.Module):
    """Stage 2: world-model losses only (`critic=False`) or TD + CQL + weighted world-model losses."""

    def __init__(self, model: WorldActionModel, critic: bool, loss: CriticLossConfig) -> None:
        super().__init__()
        self.model = model
        self.critic = critic
        self.loss_config = loss

    def forward(self, batch: Batch) -> ObjectiveOutput:
        terms, _ = compute_losses(self.model, batch, self.critic, self.loss_config)
        logged = {
            name: value.detach().float() for name in terms.__dataclass_fields__
            if (value := getattr(terms, name)) is not None
        }
        return ObjectiveOutput(terms.total, logged)


class TokenizerObjective(nn.Module):
    """Stage 1: commitment + L1 + LPIPS on a batch of frames [N, 84, 84] uint8 or [N, 1, 84, 84] float."""

    def __init__(self, tokenizer: nn.Module) -> None:
        super().__init__()
        self.tokenizer = tokenizer

    def forward(self, frames: torch.Tensor) -> ObjectiveOutput:
        losses = self.tokenizer.compute_loss(frames)
        logged = {name: getattr(losses, name).detach().float()
                  for name in ("commitment", "reconstruction", "perceptual", "total")}
        return ObjectiveOutput(losses.total, logged)
