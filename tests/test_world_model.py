"""World-action model: official parameter counts, KV cache semantics, target head, checkpoints."""

from __future__ import annotations

import pytest
import torch

from jowa.config import WorldModelConfig, load_size
from jowa.model.summary import world_model_breakdown
from jowa.model.world_model import WorldActionModel
from jowa.model_files import CheckpointError
from jowa.objective import interleave


def small_config(**overrides) -> WorldModelConfig:
    base = dict(obs_vocab_size=64, num_layers=2, num_heads=4, embed_dim=64, embed_pdrop=0.0, resid_pdrop=0.0,
                attn_pdrop=0.0, q_mlp_dim=96, num_q=2, q_dropout=0.0)
    return WorldModelConfig(**{**base, **overrides})


@pytest.mark.parametrize("size, total, trainable", [
    ("40M", 19_109_681, 17_416_091), ("70M", 53_349_681, 50_567_579), ("150M", 127_778_185, 109_045_447),
])
def test_official_parameter_counts(size: str, total: int, trainable: int) -> None:
    with torch.device("meta"):
        model = WorldActionModel(load_size(size).world_model)
    counts = world_model_breakdown(model)
    assert counts["total (incl. target Q head)"] == total
    assert counts["trainable (without target)"] == trainable


def test_summary_cli_prints_the_official_counts(capsys) -> None:
    from jowa.model.summary import main

    main(["--size", "150M"])
    out = capsys.readouterr().out
    assert "JOWA 150M" in out and "127,778,185" in out and "109,045,447" in out


def test_state_dict_keys_match_the_official_layout(reference_dir) -> None:
    import json

    shapes = json.loads((reference_dir / "jowa" / "full_size_state_dict_shapes.json").read_text())["JOWA_150M"]
    official = {k: v for k, v in shapes.items() if not k.endswith((".attn.mask", ".indices"))}
    with torch.device("meta"):
        ours = {k: list(v.shape) for k, v in WorldActionModel(load_size("150M").world_model).state_dict().items()}
    assert ours == official


def random_stream(batch: int, blocks: int, config: WorldModelConfig, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randint(0, config.obs_vocab_size, (batch, blocks, 36), generator=g)
    actions = torch.randint(0, 18, (batch, blocks), generator=g)
    return interleave(obs, actions)


def test_kv_cache_select_replicates_rows_like_recomputing_the_prefix() -> None:
    torch.manual_seed(0)
    config = small_config()
    model = WorldActionModel(config).eval()
    tokens = random_stream(2, 3, config)[:, :110]
    tasks = torch.tensor([3, 37])
    cache = model.empty_cache(2)
    model(tokens[:, :100], tasks, cache=cache)
    index = torch.tensor([1, 1, 0, 1])  # replicate and reorder, as beam expansion does
    expanded = cache.select(index)
    cached = model(tokens[index, 100:], tasks[index], cache=expanded)
    plain = model(tokens[index], tasks[index])
    torch.testing.assert_close(cached.output_sequence, plain.output_sequence[:, 100:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cached.logits_q, plain.logits_q[:, :, -1:], atol=1e-5, rtol=1e-5)
    assert expanded.length == 110 and cache.length == 100


def test_cache_overflow_is_an_error() -> None:
    config = small_config()
    model = WorldActionModel(config)
    cache = model.empty_cache(1)
    with pytest.raises(ValueError, match="overflow|exceed"):
        model(torch.zeros(1, config.max_tokens + 1, dtype=torch.long), torch.tensor([0]), cache=cache)


def test_target_head_starts_equal_stays_in_eval_and_hard_updates() -> None:
    torch.manual_seed(0)
    model = WorldActionModel(small_config(q_dropout=0.5)).train()
    assert not model.head_q_target.training and model.head_q.training
    for online, target in zip(model.head_q.parameters(), model.head_q_target.parameters()):
        assert torch.equal(online, target) and not target.requires_grad
    with torch.no_grad():
        model.head_q.head_module.params[9].add_(1.0)
    assert not torch.equal(model.head_q.head_module.params[9], model.head_q_target.head_module.params[9])
    model.update_target()
    assert torch.equal(model.head_q.head_module.params[9], model.head_q_target.head_module.params[9])


def test_q_ensemble_members_match_one_member_at_a_time() -> None:
    torch.manual_seed(0)
    model = WorldActionModel(small_config(num_q=3)).eval()
    x = torch.randn(2, 5, 64)
    both = model.head_q(x)  # [3, 2, 5, 918]
    ensemble = model.head_q.head_module
    for m in range(3):
        p = [t[m] for t in ensemble.params]
        h = torch.nn.functional.linear(x, p[0], p[1])
        h = torch.nn.functional.mish(torch.nn.functional.layer_norm(h, (96,), p[2], p[3]))
        h = torch.nn.functional.mish(torch.nn.functional.layer_norm(torch.nn.functional.linear(h, p[4], p[5]), (96,), p[6], p[7]))
        torch.testing.assert_close(both[m], torch.nn.functional.linear(h, p[8], p[9]), atol=1e-5, rtol=1e-5)


def test_save_and_load_pretrained_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    model = WorldActionModel(small_config())
    model.save_pretrained(tmp_path / "wm")
    loaded = WorldActionModel.from_pretrained(tmp_path / "wm")
    assert loaded.config == model.config
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    assert not any(p.name.startswith(".wm.tmp") for p in tmp_path.iterdir())


def test_from_pretrained_rejects_a_non_checkpoint(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="config.json"):
        WorldActionModel.from_pretrained(tmp_path)


def test_shared_prefix_cache_matches_the_plain_cache_after_reordering() -> None:
    from jowa.model.shared_prefix_cache import SharedPrefixCache

    torch.manual_seed(0)
    config = small_config()
    model = WorldActionModel(config).eval()
    tokens = random_stream(3, 3, config)[:, :110]
    tasks = torch.tensor([3, 37, 10])
    plain = model.empty_cache(3)
    model(tokens[:, :100], tasks, cache=plain)
    shared = SharedPrefixCache.from_prefix(plain)
    index = torch.tensor([0, 0, 1, 2, 2, 2])  # uneven rows per environment, as beams with different K
    plain_rows, shared_rows = plain.select(index), shared.select(index)
    for chunk in (tokens[index, 100:103], tokens[index, 103:104], tokens[index, 104:110]):
        a = model(chunk, tasks[index], cache=plain_rows)
        b = model(chunk, tasks[index], cache=shared_rows)
        torch.testing.assert_close(b.output_sequence, a.output_sequence, atol=1e-5, rtol=1e-5)
    reordered = torch.tensor([1, 2, 5, 3])
    a = model(tokens[index[reordered], 109:110], tasks[index[reordered]], cache=plain_rows.select(reordered))
    b = model(tokens[index[reordered], 109:110], tasks[index[reordered]], cache=shared_rows.select(reordered))
    torch.testing.assert_close(b.logits_observations, a.logits_observations, atol=1e-5, rtol=1e-5)


def test_flops_count_each_head_at_the_positions_it_runs_on() -> None:
    from jowa.config import load_size
    from jowa.training.throughput import world_flops_per_token

    config = load_size("150M").world_model
    with torch.device("meta"):
        model = WorldActionModel(config)
    flops = world_flops_per_token(model, config)
    backbone = sum(p.numel() for p in model.transformer.parameters())
    q_head = sum(p.numel() for p in model.head_q.parameters())  # 18.7M weights, read at 1 position in 37
    attention = 12.0 * config.num_layers * config.embed_dim * config.max_tokens
    assert 6 * backbone + attention < flops < 6 * backbone + attention + 6 * q_head / 3
    assert round(flops / 1e6) == 560  # the every-position count was 676
