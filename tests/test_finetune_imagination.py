"""Imagination for fine-tuning: the synthetic segment's alignment (the official off-by-one), the best
path read back from the planner, the FIFO buffer, and losses that keep imagined rows out of the
world-model terms."""

from __future__ import annotations

import pytest
import torch

from jowa.config import CriticLossConfig, WorldModelConfig
from jowa.data.batch import Batch
from jowa.finetuning.buffer import SegmentBuffer
from jowa.finetuning.imagined_segments import ImaginedPaths, imagination_context, imagine_paths, synthetic_segments
from jowa.finetuning.mixed_objective import mixed_losses
from jowa.games import task_id
from jowa.model.world_model import WorldActionModel
from jowa.objective import compute_losses
from jowa.planning import MCTS, BeamSearch, plan
from jowa.planning.imagination import imagine_step

L, H = 8, 2


def indexed_segments(count: int = 2) -> Batch:
    """Step t of every segment: observation tokens all 100 + t, action t, reward t / 10."""
    steps = torch.arange(L)
    return Batch(
        observations=(100 + steps)[None, :, None].expand(count, L, 36).clone(),
        actions=steps[None].expand(count, L).clone(),
        rewards=(steps.float() / 10)[None].expand(count, L).clone(),
        ends=torch.zeros(count, L, dtype=torch.long), mask_padding=torch.ones(count, L, dtype=torch.bool),
        tasks=torch.full((count,), task_id("Breakout")),
    )


def imagined(count: int = 2) -> ImaginedPaths:
    """Imagined steps L, L+1 (observations 100 + 8, 100 + 9), actions 17 − depth, reward signs −1 then 1."""
    return ImaginedPaths(
        actions=torch.tensor([[16, 15]]).expand(count, H).clone(),
        rewards=torch.tensor([[-1.0, 1.0]]).expand(count, H).clone(),
        observations=(100 + torch.arange(L, L + H))[None, :, None].expand(count, H, 36).clone(),
    )


def official_synthetic(seeds: Batch, paths: ImaginedPaths) -> Batch:
    """The official construction: real actions/rewards from the last 5 positions (indices 3..7)."""
    fixed = synthetic_segments(seeds, paths)
    real = L - H - 1
    fixed.actions[:, :real] = seeds.actions[:, L - real:]
    fixed.rewards[:, :real] = seeds.rewards[:, L - real:]
    return fixed


def aligned(segment: Batch) -> bool:
    """Every real step's action and reward are those of its own observation (index = token − 100)."""
    index = segment.observations[:, : L - H - 1, 0] - 100
    return bool((segment.actions[:, : L - H - 1] == index).all()
                and torch.allclose(segment.rewards[:, : L - H - 1], index.float() / 10))


def test_synthetic_segment_pairs_each_observation_with_its_own_action_and_reward() -> None:
    segment = synthetic_segments(indexed_segments(), imagined())
    assert segment.observations[0, :, 0].tolist() == [102, 103, 104, 105, 106, 107, 108, 109]
    assert segment.actions[0].tolist() == [2, 3, 4, 5, 6, 16, 15, 15]  # a_2..a_6, â_7, â_8, dummy â_8
    assert segment.rewards[0].tolist() == pytest.approx([0.2, 0.3, 0.4, 0.5, 0.6, -1.0, 1.0, 1.0])
    assert segment.ends.sum() == 0 and bool(segment.mask_padding.all())
    assert segment.tasks.tolist() == [task_id("Breakout")] * 2
    assert aligned(segment)
    # the official construction fails the same check: every real action/reward is one step early
    official = official_synthetic(indexed_segments(), imagined())
    assert official.actions[0, :5].tolist() == [3, 4, 5, 6, 7]
    assert not aligned(official)


def test_context_is_the_last_six_steps_ending_at_the_last_observation() -> None:
    context = imagination_context(indexed_segments(1), H)[0]
    assert context.numel() == 37 * (L - H) - 1
    assert context[:36].unique().tolist() == [102] and int(context[36]) == 2  # o_2 then a_2
    assert context[-36:].unique().tolist() == [107]  # ends with o_7, before its action
    assert context[36::37].tolist() == [2, 3, 4, 5, 6]  # the actions between the observations
    padded = indexed_segments(1)
    padded.mask_padding[0, -1] = False
    with pytest.raises(ValueError, match="all real"):
        imagination_context(padded, H)


@pytest.fixture(scope="module")
def model() -> WorldActionModel:
    torch.manual_seed(0)
    config = WorldModelConfig(obs_vocab_size=32, num_layers=2, num_heads=2, embed_dim=32, q_mlp_dim=32, num_q=2)
    return WorldActionModel(config).eval()


def random_segments(count: int, game: str = "Breakout", seed: int = 1) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        observations=torch.randint(0, 32, (count, L, 36), generator=g),
        actions=torch.randint(0, 4, (count, L), generator=g),
        rewards=torch.randint(-1, 2, (count, L), generator=g).float(), ends=torch.zeros(count, L, dtype=torch.long),
        mask_padding=torch.ones(count, L, dtype=torch.bool), tasks=torch.full((count,), task_id(game)),
    )


def test_imagined_path_is_the_planners_choice_replayed_in_the_model(model: WorldActionModel) -> None:
    seeds = random_segments(5)
    options = BeamSearch(beam_width=2, horizon=H)
    paths = imagine_paths(model, seeds, options)
    contexts = imagination_context(seeds, H)
    assert paths.actions[:, 0].tolist() == plan(model, list(contexts), seeds.tasks, options).actions.tolist()
    assert bool(model.valid_actions(seeds.tasks).gather(1, paths.actions).all())
    # replaying the path's actions from the context reproduces its frames and reward signs
    cache = model.empty_cache(len(seeds))
    with torch.no_grad():
        model(contexts, seeds.tasks, cache=cache, with_target=False)
    valid = model.valid_actions(seeds.tasks)
    for depth in range(H):
        step = imagine_step(model, cache, paths.actions[:, depth], seeds.tasks, valid)
        assert torch.equal(step.next_obs_tokens, paths.observations[:, depth])
        assert torch.equal(step.rewards.float(), paths.rewards[:, depth])


def test_imagination_takes_any_planner_whose_paths_reach_the_horizon(model: WorldActionModel) -> None:
    seeds = random_segments(2)
    with pytest.raises(ValueError, match="imagination needs H = 2"):  # MCTS stops at depth H − 1
        imagine_paths(model, seeds, MCTS(horizon=H, simulations=3))


def test_buffer_is_fifo_and_samples_without_replacement_when_it_can() -> None:
    buffer = SegmentBuffer(capacity=5, segment_length=L, seed=0)
    first, second = indexed_segments(3), indexed_segments(4)
    first.tasks[:] = torch.arange(3)
    second.tasks[:] = torch.arange(10, 14)
    buffer.add(first)
    buffer.add(second)
    assert len(buffer) == 5 and buffer.added == 7
    assert sorted(buffer.tasks.tolist()) == [2, 10, 11, 12, 13]  # the two oldest were overwritten
    every = buffer.sample(5)
    assert sorted(every.tasks.tolist()) == [2, 10, 11, 12, 13]
    assert torch.equal(every.observations[0], first.observations[0]) and every.observations.dtype == torch.int64
    assert len(buffer.sample(9)) == 9  # more than it holds: with replacement
    with pytest.raises(RuntimeError, match="empty"):
        SegmentBuffer(2, L).sample(1)


def test_imagined_rows_feed_td_and_cql_only(model: WorldActionModel) -> None:
    real, fake = random_segments(3, seed=2), random_segments(2, seed=3)
    config = CriticLossConfig(supervised_weight=0.5)
    with torch.no_grad():
        alone = mixed_losses(model, real, None, config)
        reference, _ = compute_losses(model, real, True, config)
        mixed = mixed_losses(model, real, fake, config)
    assert torch.allclose(alone.total, reference.total) and torch.allclose(alone.loss_td_error, reference.loss_td_error)
    for name in ("loss_obs", "loss_rewards", "loss_ends"):
        assert torch.allclose(getattr(mixed, name), getattr(alone, name), atol=1e-6)
    assert not torch.allclose(mixed.loss_td_error, alone.loss_td_error)
    assert not torch.allclose(mixed.loss_cql_penalty, alone.loss_cql_penalty)
