"""The single-token decoder of planning computes what `WorldActionModel.forward` computes, with either cache."""

from __future__ import annotations

import pytest
import torch

from jowa.config import WorldModelConfig
from jowa.model.decode import SingleTokenDecoder
from jowa.model.shared_prefix_cache import SharedPrefixCache
from jowa.model.world_model import WorldActionModel


def model() -> WorldActionModel:
    torch.manual_seed(0)
    config = WorldModelConfig(obs_vocab_size=64, num_layers=2, num_heads=4, embed_dim=64, q_mlp_dim=96, num_q=2)
    return WorldActionModel(config).eval()


def filled(world: WorldActionModel, rows_per_env: list[int], context: int):
    """Two identical caches over E = len(rows_per_env) contexts, expanded to the given rows per environment."""
    envs = len(rows_per_env)
    tokens = torch.randint(0, 64, (envs, context), generator=torch.Generator().manual_seed(1))
    tasks = torch.arange(envs)
    cache = world.empty_cache(envs)
    world(tokens, tasks, cache=cache, with_target=False)
    rows = torch.repeat_interleave(torch.arange(envs), torch.tensor(rows_per_env))
    plain = cache.select(rows)
    return plain, SharedPrefixCache.from_prefix(cache).select(rows), tasks[rows]


@pytest.mark.parametrize("rows_per_env", [[3], [2, 2], [1, 3]])  # uniform and ragged beams
def test_decoder_equals_forward_over_a_block_boundary(rows_per_env: list[int]) -> None:
    world = model()
    context = 37 * 2 - 5  # the next 10 tokens hold a Q position (o^35 at 71) and an action position (73)
    with torch.no_grad():
        for kind in (0, 1):  # the plain cache, the shared-prefix cache
            *caches, tasks = filled(world, rows_per_env, context)
            reference, fast = caches[kind], filled(world, rows_per_env, context)[kind]
            decoder = SingleTokenDecoder(world)
            for step in range(10):
                position = context + step
                high = 18 if position % 37 == 36 else 64
                tokens = torch.randint(0, high, (len(tasks),))
                expected = world(tokens[:, None], tasks, cache=reference, with_target=False).output_sequence[:, -1]
                got = decoder.hidden(tokens, tasks, fast)
                torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
                assert fast.length == reference.length == position + 1


def test_decoder_refuses_a_model_in_training_mode() -> None:
    with pytest.raises(ValueError, match="eval"):
        SingleTokenDecoder(model().train())
