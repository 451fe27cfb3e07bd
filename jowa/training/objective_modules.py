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
from jowa.diagnostics.pixels import CHANGE_LEVELS, FOREGROUND_LEVELS
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


def foreground_weights(frames: torch.Tensor, backgrounds: torch.Tensor, weight: float) -> torch.Tensor:
    """uint8 frames [N, 84, 84], backgrounds [G, 84, 84] → float [N, 1, 84, 84]: 1 + weight where a pixel differs
    from its game's background by more than FOREGROUND_LEVELS. A frame's game is the nearest background
    (mean absolute difference): the games' backgrounds differ far more than a frame from its own."""
    x, bg = frames.float(), backgrounds.to(frames.device).float()
    nearest = (x[:, None] - bg[None]).abs().mean(dim=(2, 3)).argmin(dim=1)  # [N]
    foreground = (x - bg[nearest]).abs() > FOREGROUND_LEVELS  # [N, 84, 84]
    return (1.0 + weight * foreground.float()).unsqueeze(1)


def motion_weights(frames: torch.Tensor, previous: torch.Tensor, weight: float) -> torch.Tensor:
    """uint8 frames and their episodes' previous frames [N, 84, 84] → float [N, 1, 84, 84]: `weight` where a
    pixel changed by more than CHANGE_LEVELS since the previous frame, else 0."""
    changed = (frames.float() - previous.float()).abs() > CHANGE_LEVELS
    return (weight * changed.float()).unsqueeze(1)


class TokenizerObjective(nn.Module):
    """Stage 1: commitment + L1 + LPIPS on a batch of frames [N, 84, 84] uint8 or [N, 1, 84, 84] float, or of
    uint8 [N, 2, 84, 84] (each frame beside its episode's previous frame, for the motion weight).

    Ours, not official (both 0 by default): with `backgrounds` (uint8 [G, 84, 84], one per game) and
    `foreground_weight` > 0 the L1 term weighs the pixels of objects (those unlike the background)
    1 + foreground_weight times; with `motion_weight` > 0 the pixels that changed since the previous frame
    (the ball, the shots; still bricks and walls do not) get motion_weight more; `pixel_loss` "l2" squares the
    per-pixel error (ours; "l1" is official)."""

    def __init__(self, tokenizer: nn.Module, backgrounds: torch.Tensor | None = None,
                 foreground_weight: float = 0.0, motion_weight: float = 0.0, pixel_loss: str = "l1") -> None:
        super().__init__()
        self.tokenizer, self.pixel_loss = tokenizer, pixel_loss
        self.backgrounds = backgrounds if foreground_weight > 0 else None
        self.foreground_weight, self.motion_weight = foreground_weight, motion_weight

    def forward(self, frames: torch.Tensor) -> ObjectiveOutput:
        previous = None
        if frames.dtype == torch.uint8 and frames.dim() == 4:
            frames, previous = frames[:, 0], frames[:, 1]
        if self.motion_weight > 0 and previous is None:
            raise ValueError("the motion weight needs uint8 frames beside their previous frames [N, 2, 84, 84]")
        weights = None
        if self.backgrounds is not None:
            if frames.dtype != torch.uint8:
                raise ValueError("foreground weighting needs uint8 frames [N, 84, 84]")
            weights = foreground_weights(frames, self.backgrounds, self.foreground_weight)
        if self.motion_weight > 0:
            assert previous is not None
            moving = motion_weights(frames, previous, self.motion_weight)
            weights = moving + (1.0 if weights is None else weights)
        losses = self.tokenizer.compute_loss(frames, pixel_weights=weights, pixel_loss=self.pixel_loss)
        logged = {name: getattr(losses, name).detach().float()
                  for name in ("commitment", "reconstruction", "perceptual", "total")}
        return ObjectiveOutput(losses.total, logged)
