"""Planning on logged states: the one-step beam search beside greedy and beside the real next frame's value."""

from __future__ import annotations

import math

import pytest
import torch

from jowa.config import WorldModelConfig
from jowa.data.batch import Batch
from jowa.diagnostics.open_loop import imagine_open_loop
from jowa.diagnostics.planning import planning_measures
from jowa.games import task_id

MODEL = WorldModelConfig(obs_vocab_size=32, num_layers=1, num_heads=2, embed_dim=32, q_mlp_dim=32, num_q=2)
BREAKOUT_ACTIONS = torch.tensor([0, 1, 3, 4])  # Breakout's minimal set in full-set indices


@pytest.fixture(scope="module")
def model():
    from jowa.model.world_model import WorldActionModel

    torch.manual_seed(0)
    return WorldActionModel(MODEL).eval()


def _batch(rows: int = 6, steps: int = 8, seed: int = 1) -> Batch:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(rows, steps, dtype=torch.bool)
    mask[-1, 4:] = False  # a short row: no real next frame after a 4-step memory
    return Batch(observations=torch.randint(0, 32, (rows, steps, 36), generator=g),
                 actions=BREAKOUT_ACTIONS[torch.randint(0, 4, (rows, steps), generator=g)],
                 rewards=torch.zeros(rows, steps), ends=torch.zeros(rows, steps, dtype=torch.long),
                 mask_padding=mask, tasks=torch.full((rows,), task_id("Breakout")))


def test_a_beam_of_one_is_greedy_and_short_rows_are_left_out(model) -> None:
    m = planning_measures(model, _batch(), context=4, beam_width=1)
    assert m["plan_states"] == 5  # the short row has no step 4
    assert m["plan_matches_greedy"] == 1.0 and m["greedy_matches_data_here"] == m["plan_matches_data"]
    assert 0 < m["plan_top_action_share"] <= 1 and m["root_q_gap_top2"] >= 0


def test_the_value_gap_is_zero_when_the_real_next_frame_is_the_imagined_one(model) -> None:
    """Put the model's own argmax next frame and reward sign in the data: imagined and real values agree."""
    batch, context = _batch(), 4
    loop = imagine_open_loop(model, batch.observations, batch.actions, batch.rewards, batch.tasks, context=context)
    batch.observations[:, context] = loop.model_tokens[:, 0]
    batch.rewards[:, context - 1] = loop.reward_signs[:, 0].float()
    m = planning_measures(model, batch, context=context, beam_width=4)  # every valid action is a candidate
    assert m["imagined_real_abs_gap"] == pytest.approx(0.0, abs=1e-4)
    assert m["imagined_reward_sign_matches"] == 1.0


def test_a_changed_next_frame_opens_a_gap_and_bad_contexts_are_refused(model) -> None:
    m = planning_measures(model, _batch(), context=4, beam_width=4)  # random next frames
    assert m["imagined_real_abs_gap"] > 0 and not math.isnan(m["imagined_minus_root_q"])
    with pytest.raises(ValueError, match="context"):
        planning_measures(model, _batch(), context=8)


def test_a_return_lambda_of_zero_plans_greedy_s_action(model) -> None:
    m = planning_measures(model, _batch(), context=4, beam_width=4, return_lambda=0.0)
    assert m["plan_matches_greedy"] == 1.0 and m["plan_matches_data"] == m["greedy_matches_data_here"]
