"""One objective evaluation: batch → model forward → loss terms (stage 1 or stage 2)."""

from __future__ import annotations

import torch

from jowa.config import CriticLossConfig
from jowa.data.batch import Batch
from jowa.losses import (
    LossTerms, c51_td_loss, cql_alpha_value, cql_penalty, stage1_total, stage2_total, td_rows, world_model_losses,
)
from jowa.model.world_model import WorldActionModel, WorldModelOutput


def interleave(obs_tokens: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """[B, T, K] observation tokens and [B, T] actions -> [B, T·(K+1)] token stream o^0..o^35, a per step."""
    return torch.cat([obs_tokens, actions.unsqueeze(-1)], dim=-1).flatten(1)


def random_actions(valid_actions: torch.Tensor, steps: int) -> torch.Tensor:
    """[B, 18] bool valid-action mask -> [B, steps] actions drawn uniformly from each row's valid ones."""
    return torch.multinomial(valid_actions.float(), steps, replacement=True)


def critic_forward(model: WorldActionModel, batch: Batch, history: str, world: WorldModelOutput) -> WorldModelOutput:
    """The forward pass whose Q rows the critic's losses read: the world model's own (`actions`, official), or one
    over the same observations with every action token random (`random`; the TD and CQL terms still index Q by
    the data's actions, which no Q row reads: Q of step t sits before a_t)."""
    if history == "actions":
        return world
    actions = random_actions(model.valid_actions(batch.tasks), batch.actions.shape[1])
    return model(interleave(batch.observations, actions), batch.tasks, with_target=True)


def compute_losses(
    model: WorldActionModel, batch: Batch, critic: bool, config: CriticLossConfig, supervised_rows: int | None = None,
) -> tuple[LossTerms, WorldModelOutput]:
    """Stage 1 (`critic=False`): world-model CEs. Stage 2: TD + CQL over all rows + supervised_weight × CEs over
    the first `supervised_rows` rows (all by default; fine-tuning puts its imagined rows after the real ones).
    TD and CQL read the Q rows of `critic_forward`."""
    own_pass = critic and config.critic_history == "actions"
    outputs = model(interleave(batch.observations, batch.actions), batch.tasks, with_target=own_pass)
    r = batch.batch_size if supervised_rows is None else supervised_rows
    wm = world_model_losses(
        outputs.logits_observations[:r], outputs.logits_rewards[:r], outputs.logits_ends[:r],
        batch.observations[:r], batch.rewards[:r], batch.ends[:r], batch.mask_padding[:r], config.rewarded_weight,
    )
    if not critic:
        return stage1_total(*wm), outputs
    support = model.atoms
    rows = td_rows(batch.mask_padding, batch.ends)
    q = critic_forward(model, batch, config.critic_history, outputs)
    assert q.logits_q_target is not None
    td = c51_td_loss(
        q.logits_q, q.logits_q_target, batch.actions, batch.rewards, rows,
        model.valid_actions(batch.tasks), support, config.gamma, config.bootstrap,
    )
    cql = cql_penalty(q.logits_q, batch.actions, batch.mask_padding, support, cql_alpha_value(config.cql_weight))
    return stage2_total(*wm, td, cql, config.supervised_weight), outputs
