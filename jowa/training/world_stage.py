"""Stage 2 as a `Stage`: the world-action model on token segments (docs/official_jowa.md §6).

Phase "world_model" (steps < critic_start): world-model losses only; the Q head is frozen so it
gets no gradients and no weight decay (the official Q head sat in an optimizer group without
gradients). Phase "critic": TD + CQL + supervised_weight × world-model losses, with a fresh AdamW
as the official run re-created its optimizers at the switch — but with the configured stage-2 lr
for the world groups (the official continuous run kept 1e-4 by accident, §6.3).
The target head is copied from the online head every `target_update_every` steps (counting all
steps) and right after a checkpoint is loaded, as the official code does.
`WorldMeasures` logs the diagnostics (jowa.diagnostics) of a fixed batch of episodes that end as `diag/*`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from jowa.data.shards import ShardInfo
from jowa.diagnostics import critic_measures, world_measures
from jowa.diagnostics.held import episode_windows, held_episodes
from jowa.diagnostics.world import eval_forward
from jowa.model.world_model import WorldActionModel
from jowa.training.batch_source import BatchSource, to_device
from jowa.training.config import WorldStageConfig
from jowa.training.loop import Phase, PhaseParts, Stage
from jowa.training.measure_hook import MeasureHook
from jowa.training.objective_modules import WorldObjective
from jowa.training.optim import WorldLearningRates, make_adamw, make_schedule, world_param_groups
from jowa.training.throughput import world_flops_per_token

WORLD_MODEL, TOKENIZER = "world_model", "tokenizer"


class TargetUpdate:
    def __init__(self, model: WorldActionModel, every: int) -> None:
        self.model = model
        self.every = every

    def after_step(self, step: int) -> None:
        if step % self.every == 0:
            self.model.update_target()

    def after_resume(self, step: int) -> None:
        self.model.update_target()


HELD_STEPS = 512  # steps of episodes that end (whole or tails) in the diagnostics batch (64 windows of 8)
MEASURE_EVERY_LOGS = 5  # the world diagnostics run every this many log points (and at the end)


class WorldMeasures(MeasureHook):
    """Hook: world and critic diagnostics of a fixed batch of episodes that end (rank 0).

    One eval-mode forward pass over the episodes' consecutive windows gives next-frame token accuracy,
    reward accuracy, the TD loss, the Q spread and Q against the observed returns-to-go.
    """

    def __init__(self, model: WorldActionModel, shards: list[ShardInfo], segment_length: int, gamma: float,
                 every: int, last: int, max_steps: int = HELD_STEPS, bootstrap: str = "max") -> None:
        super().__init__(every, last)
        self.model, self.gamma, self.bootstrap = model, gamma, bootstrap
        episodes = held_episodes(shards, max_steps)
        self.episodes = len(episodes)
        self.batch, self.returns = episode_windows(episodes, segment_length, gamma)

    def compute(self) -> dict[str, float]:
        if self.batch.batch_size == 0:  # shards without a single episode: nothing to measure
            return {}
        device = self.model.pos_emb.weight.device
        batch, returns = to_device(self.batch, device), self.returns.to(device)
        outputs = eval_forward(self.model, batch)
        return {**world_measures(self.model, batch, outputs),
                **critic_measures(self.model, batch, self.gamma, returns, outputs, self.bootstrap)}


def world_stage(
    model: WorldActionModel, config: WorldStageConfig, source: BatchSource, micro_batch_size: int,
    tokenizer: nn.Module | None = None, facts: dict[str, Any] | None = None,
) -> Stage:
    """`tokenizer` (frozen, already trained) is saved beside the model in every checkpoint."""

    def phase(critic: bool) -> PhaseParts:
        model.head_q.requires_grad_(critic)
        rates = WorldLearningRates(config.critic_phase_lr if critic else config.lr, config.critic_lr,
                                   config.weight_decay)
        optimizer = make_adamw(world_param_groups(model, rates, with_critic=critic), config.betas, config.eps)
        length = (config.steps - config.critic_start) if critic else config.critic_start
        scheduler = make_schedule(optimizer, config.schedule, config.warmup_steps, length)
        return PhaseParts(WorldObjective(model, critic, config.loss), optimizer, scheduler)

    phases = []
    if config.critic_start > 0:
        phases.append(Phase("world_model", 0, lambda: phase(critic=False)))
    if config.critic_start < config.steps or not phases:
        phases.append(Phase("critic", config.critic_start, lambda: phase(critic=True)))
    saved: dict[str, nn.Module] = {WORLD_MODEL: model}
    if tokenizer is not None:
        saved[TOKENIZER] = tokenizer
    tokens_per_item = config.segment_length * model.config.tokens_per_block
    return Stage(
        name="world", steps=config.steps, phases=phases, source=source, saved_modules=saved,
        grad_accum=config.grad_accum, micro_batch_size=micro_batch_size, grad_clip=config.grad_clip,
        items_in=lambda batch: batch.batch_size, tokens_per_item=tokens_per_item,
        flops_per_token=world_flops_per_token(model, model.config),
        hooks=[TargetUpdate(model, config.target_update_every)], facts=dict(facts or {}),
    )
