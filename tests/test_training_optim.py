"""Optimizer groups of the world-action model (docs/official_jowa.md §6.1) and the lr schedules."""

from __future__ import annotations

import pytest
import torch

from jowa.config import WorldModelConfig
from jowa.model.world_model import WorldActionModel
from jowa.training.optim import (
    CRITIC, DECAY, NO_DECAY, WorldLearningRates, classify_world_parameters, make_adamw, make_schedule,
    world_param_groups,
)

SMALL = WorldModelConfig(obs_vocab_size=64, num_layers=2, num_heads=2, embed_dim=32, q_mlp_dim=32, num_q=2)


@pytest.fixture(scope="module")
def model() -> WorldActionModel:
    torch.manual_seed(0)
    return WorldActionModel(SMALL)


def test_official_decay_rules(model: WorldActionModel) -> None:
    groups = {name: set(names) for name, names in classify_world_parameters(model).items()}
    decayed = {"transformer.blocks.0.attn.key.weight", "transformer.blocks.1.mlp.0.weight",
               "transformer.blocks.1.mlp.2.weight", "head_observations.head_module.2.weight",
               "head_rewards.head_module.0.weight", "head_ends.head_module.2.weight"}
    undecayed = {"transformer.blocks.0.attn.key.bias", "transformer.blocks.0.ln1.weight",
                 "transformer.blocks.0.ln1.bias", "transformer.ln_f.weight", "pos_emb.weight",
                 "task_emb.embedding_tables.0.weight", "embedder.embedding_tables.1.weight",
                 "head_ends.head_module.2.bias"}
    assert decayed <= groups[DECAY] and not decayed & groups[NO_DECAY]
    assert undecayed <= groups[NO_DECAY] and not undecayed & groups[DECAY]
    # every Q-ensemble parameter (weights, biases, LayerNorms) in the critic group; the target in none
    assert groups[CRITIC] == {f"head_q.head_module.params.{i}" for i in range(10)}
    assert not any(n.startswith("head_q_target") for g in groups.values() for n in g)
    trainable = {n for n, p in model.named_parameters() if not n.startswith("head_q_target")}
    assert groups[DECAY] | groups[NO_DECAY] | groups[CRITIC] == trainable
    assert sum(map(len, groups.values())) == len(trainable)  # each exactly once
    # all Linear weights of backbone + obs/reward/end heads: 4 attn + 2 mlp per block, 2 per MLP head
    assert len(groups[DECAY]) == 2 * 6 + 3 * 2


def test_groups_carry_lrs_and_decay(model: WorldActionModel) -> None:
    rates = WorldLearningRates(world=1e-4, critic=5e-5, weight_decay=0.01)
    optimizer = make_adamw(world_param_groups(model, rates, with_critic=True), (0.9, 0.999), 1e-8)
    by_name = {g["name"]: g for g in optimizer.param_groups}
    assert (by_name[DECAY]["lr"], by_name[DECAY]["weight_decay"]) == (1e-4, 0.01)
    assert (by_name[NO_DECAY]["lr"], by_name[NO_DECAY]["weight_decay"]) == (1e-4, 0.0)
    assert (by_name[CRITIC]["lr"], by_name[CRITIC]["weight_decay"]) == (5e-5, 0.01)
    without = world_param_groups(model, rates, with_critic=False)
    assert [g["name"] for g in without] == [DECAY, NO_DECAY]


def test_schedules() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1.0)
    assert make_schedule(optimizer, "constant", 0, 100) is None  # the official constant lr
    schedule = make_schedule(optimizer, "cosine", 10, 110)
    lrs = []
    for _ in range(110):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(0.5) and lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.5) and lrs[-1] < 0.01
