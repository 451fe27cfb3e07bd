"""The fine-tuning objective: stage-2 losses on real segments, TD + CQL also on imagined ones, and
optionally the tokenizer's own loss (docs/official_jowa.md §5, §9).

One forward pass over [real; imagined] rows. The world-model cross-entropies read only the real rows
(imagined transitions are the model's own predictions, not data); TD and CQL read all rows: one loss
assembly, `jowa.objective.compute_losses` with `supervised_rows`.
"""

from __future__ import annotations

from dataclasses import fields

import torch
from torch import nn

from jowa.config import CriticLossConfig
from jowa.data.batch import Batch
from jowa.finetuning.buffer import SegmentBuffer
from jowa.finetuning.imagined_segments import imagine
from jowa.finetuning.segment_batches import FinetuneBatch
from jowa.losses import LossTerms
from jowa.model.world_model import WorldActionModel
from jowa.objective import compute_losses
from jowa.planning.planner import Planner
from jowa.training.objective_modules import ObjectiveOutput


def concat(first: Batch, second: Batch) -> Batch:
    return Batch(**{f.name: torch.cat([getattr(first, f.name), getattr(second, f.name)]) for f in fields(Batch)})


def rows(batch: Batch, stop: int) -> Batch:
    """The first `stop` segments."""
    return Batch(**{f.name: getattr(batch, f.name)[:stop] for f in fields(Batch)})


def mixed_losses(model: WorldActionModel, real: Batch, imagined: Batch | None, config: CriticLossConfig) -> LossTerms:
    """TD + CQL over real and imagined rows + supervised_weight × world-model CEs over the real rows."""
    batch = real if imagined is None else concat(real, imagined)
    return compute_losses(model, batch, critic=True, config=config, supervised_rows=real.batch_size)[0]


class Imagination:
    """When and how many imagined segments each step adds to / takes from the buffer."""

    def __init__(self, buffer: SegmentBuffer, options: Planner, after: int, per_batch: int) -> None:
        self.buffer, self.options, self.after, self.per_batch = buffer, options, after, per_batch

    def active(self, step: int) -> bool:
        return step >= self.after


def retokenize(tokenizer: nn.Module, batch: Batch, frames: torch.Tensor) -> Batch:
    """The segments' observations re-encoded from their frames [B, L, 84, 84] by the current tokenizer
    (eval mode, no gradient, as the official stage 1); padded steps keep token 0."""
    if not batch.batch_size:
        return batch
    was_training = tokenizer.training
    tokenizer.eval()
    tokens = tokenizer.encode_tokens(frames)  # [B, L, 36]
    tokenizer.train(was_training)
    observations = torch.where(batch.mask_padding[..., None], tokens, torch.zeros_like(tokens))
    return Batch(observations, batch.actions, batch.rewards, batch.ends, batch.mask_padding, batch.tasks)


class FinetuneObjective(nn.Module):
    """forward(FinetuneBatch) -> ObjectiveOutput. `step` (optimizer steps done) is kept current by the
    `StepCounter` hook; imagination starts when it reaches `imagination.after`."""

    def __init__(
        self, model: WorldActionModel, tokenizer: nn.Module, loss: CriticLossConfig,
        imagination: Imagination | None = None, train_tokenizer: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer  # a submodule: its parameters train only when they require grad
        self.loss_config = loss
        self.imagination = imagination
        self.train_tokenizer = train_tokenizer
        self.step = 0

    def forward(self, batch: FinetuneBatch) -> ObjectiveOutput:
        real, seeds = batch.real, batch.seeds
        if self.train_tokenizer:
            real = retokenize(self.tokenizer, real, batch.real_frames)
            seeds = retokenize(self.tokenizer, seeds, batch.seed_frames)
        imagined = None
        logged: dict[str, torch.Tensor] = {}
        if self.imagination is not None and self.imagination.active(self.step):
            self.imagination.buffer.add(imagine(self.model, seeds, self.imagination.options))
            count = self.imagination.per_batch
            imagined = self.imagination.buffer.sample(count, real.observations.device)
            real = rows(real, real.batch_size - count)
            logged["imagination_buffer"] = torch.tensor(float(len(self.imagination.buffer)))
        terms = mixed_losses(self.model, real, imagined, self.loss_config)
        total = terms.total
        logged.update({name: value.detach().float() for name, value in vars(terms).items() if value is not None})
        if self.train_tokenizer:
            tok = self.tokenizer.compute_loss(batch.tokenizer_frames)
            logged["world_total"] = terms.total.detach().float()
            total = total + tok.total
            logged.update({f"tokenizer_{k}": getattr(tok, k).detach().float()
                           for k in ("commitment", "reconstruction", "perceptual", "total")})
            logged["total"] = total.detach().float()
        return ObjectiveOutput(total, logged)


class StepCounter:
    """Loop hook: tells the objective how many optimizer steps are done."""

    def __init__(self, objective: FinetuneObjective) -> None:
        self.objective = objective

    def after_step(self, step: int) -> None:
        self.objective.step = step

    def after_resume(self, step: int) -> None:
        self.objective.step = step
