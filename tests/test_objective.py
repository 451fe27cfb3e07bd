"""The stage-2 objective's critic pass: with `critic_history=random` the critic reads random action tokens."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from jowa.config import CriticLossConfig, WorldModelConfig
from jowa.data.batch import Batch
from jowa.games import task_id
from jowa.losses import c51_td_loss, cql_alpha_value, cql_penalty, td_rows
from jowa.model.world_model import WorldActionModel
from jowa.objective import compute_losses, interleave, random_actions

L = 8


def model() -> WorldActionModel:
    torch.manual_seed(0)
    config = WorldModelConfig(obs_vocab_size=32, num_layers=2, num_heads=2, embed_dim=32, q_mlp_dim=32, num_q=2)
    return WorldActionModel(config).eval()


def segments(count: int = 3) -> Batch:
    g = torch.Generator().manual_seed(1)
    return Batch(
        observations=torch.randint(0, 32, (count, L, 36), generator=g),
        actions=torch.randint(0, 4, (count, L), generator=g),
        rewards=torch.randint(-1, 2, (count, L), generator=g).float(), ends=torch.zeros(count, L, dtype=torch.long),
        mask_padding=torch.ones(count, L, dtype=torch.bool), tasks=torch.full((count,), task_id("Breakout")),
    )


def test_random_actions_are_uniform_over_each_rows_valid_actions() -> None:
    valid = torch.zeros(2, 18, dtype=torch.bool)
    valid[0, :4] = True  # Breakout's four
    valid[1, [0, 5, 17]] = True
    torch.manual_seed(0)
    drawn = random_actions(valid, 3000)
    assert drawn.shape == (2, 3000)
    assert valid.gather(1, drawn).all()
    for row, actions in ((0, range(4)), (1, (0, 5, 17))):
        share = torch.stack([(drawn[row] == a).float().mean() for a in actions])
        assert torch.allclose(share, torch.full_like(share, 1 / len(actions)), atol=0.04)


def test_random_history_changes_only_what_the_critic_reads() -> None:
    net, batch = model(), segments()
    config = CriticLossConfig()
    with torch.no_grad():
        official, _ = compute_losses(net, batch, True, config)
        torch.manual_seed(7)
        ours, _ = compute_losses(net, batch, True, replace(config, critic_history="random"))
        torch.manual_seed(7)  # the same draw by hand: Q rows of the random stream, indexed by the data's actions
        random_stream = interleave(batch.observations, random_actions(net.valid_actions(batch.tasks), L))
        q = net(random_stream, batch.tasks)
        td = c51_td_loss(
            q.logits_q, q.logits_q_target, batch.actions, batch.rewards, td_rows(batch.mask_padding, batch.ends),
            net.valid_actions(batch.tasks), net.atoms, config.gamma, config.bootstrap,
        )
        cql, _, _ = cql_penalty(q.logits_q, batch.actions, batch.mask_padding, net.atoms, cql_alpha_value(0.1))
    for name in ("loss_obs", "loss_rewards", "loss_ends"):  # the world model still reads the data's actions
        assert torch.equal(getattr(ours, name), getattr(official, name))
    assert torch.allclose(ours.loss_td_error, td) and torch.allclose(ours.loss_cql_penalty, cql)
    assert not torch.allclose(ours.loss_td_error, official.loss_td_error)


def test_random_history_trains_the_trunk_through_the_critic() -> None:
    net, batch = model().train(), segments()
    terms, _ = compute_losses(net, batch, True, CriticLossConfig(critic_history="random", supervised_weight=0.0))
    terms.total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.head_q.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.transformer.parameters())


def test_rewarded_weight_makes_the_reward_loss_a_weighted_mean() -> None:
    net, batch = model(), segments()
    with torch.no_grad():
        official, _ = compute_losses(net, batch, False, CriticLossConfig())
        weighted, outputs = compute_losses(net, batch, False, CriticLossConfig(rewarded_weight=10.0))
    logits, labels = outputs.logits_rewards.flatten(0, 1), (batch.rewards.sign() + 1).long().flatten()
    nll = -torch.log_softmax(logits, dim=-1).gather(1, labels[:, None]).squeeze(1)
    weights = torch.where(labels == 1, 1.0, 10.0)
    assert torch.equal(official.loss_rewards, F.cross_entropy(logits, labels))  # weight 1: the official plain mean
    assert torch.allclose(official.loss_rewards, nll.mean())
    assert torch.allclose(weighted.loss_rewards, (weights * nll).sum() / weights.sum())
    assert torch.equal(weighted.loss_obs, official.loss_obs) and torch.equal(weighted.loss_ends, official.loss_ends)
