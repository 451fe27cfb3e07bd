"""Dead-code restarts (tokenizer.code_restart_every): unused codes move onto latents, used ones stay, and
the result depends on the weights, the frames and the step only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jowa.config import TokenizerConfig
from jowa.tokenizer import Tokenizer
from jowa.training.code_restart import (
    DeadCodeRestart, _encode_sample, restart_dead_codes, restart_weights, sample_latents,
)


def small() -> Tokenizer:
    torch.manual_seed(0)
    return Tokenizer(TokenizerConfig(vocab_size=64, embed_dim=8, z_channels=8, ch=4, num_res_blocks=1,
                                     attn_resolutions=(), lpips_net="none"))


def frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.integers(0, 4, (12, 84, 84)) * 60).astype(np.uint8)


def test_unused_codes_move_onto_sample_latents_and_used_codes_stay() -> None:
    tokenizer, sample = small(), frames()
    latents, tokens = sample_latents(tokenizer, sample)
    assert latents.shape == (12 * 36, 8) and tokens.shape == (12 * 36,)
    before = tokenizer.embedding.weight.detach().clone()
    used = torch.bincount(tokens, minlength=64) > 0
    assert used.sum() < 64  # the official tiny init leaves most codes unused
    moved = restart_dead_codes(tokenizer, sample, torch.Generator().manual_seed(1))
    after = tokenizer.embedding.weight.detach()
    assert moved == int((~used).sum())
    assert torch.equal(after[used], before[used])
    assert (after[~used][:, None] == latents[None]).all(-1).any(-1).all()  # each moved code is a latent
    _, tokens_after = sample_latents(tokenizer, sample)
    assert torch.unique(tokens_after).numel() > used.sum()  # more codes are in use now


def test_restarts_are_reproducible_and_only_every_n_steps() -> None:
    a, b, sample = small(), small(), frames()
    hook_a, hook_b = DeadCodeRestart(a, sample, every=5, seed=3), DeadCodeRestart(b, sample, every=5, seed=3)
    before = a.embedding.weight.detach().clone()
    hook_a.after_step(4)
    assert torch.equal(a.embedding.weight, before)
    hook_a.after_step(5)
    hook_b.after_step(5)
    assert not torch.equal(a.embedding.weight, before) and torch.equal(a.embedding.weight, b.embedding.weight)


def test_pixel_restarts_move_dead_codes_onto_distinct_latents() -> None:
    tokenizer, sample = small(), frames()
    latents, tokens = sample_latents(tokenizer, sample)
    used = torch.bincount(tokens, minlength=64) > 0
    before = tokenizer.embedding.weight.detach().clone()
    background = np.zeros((1, 84, 84), dtype=np.uint8)
    weights = restart_weights(sample, "pixels", background, 10.0)
    moved = restart_dead_codes(tokenizer, sample, torch.Generator().manual_seed(1), weights)
    after = tokenizer.embedding.weight.detach()
    assert moved == int((~used).sum())
    assert torch.equal(after[used], before[used])
    match = (after[~used][:, None] == latents[None]).all(-1)  # [dead, M·36]
    assert match.any(-1).all()  # each moved code is a latent of the sample
    assert torch.unique(after[~used], dim=0).shape[0] == moved  # drawn without replacement


def test_patch_errors_are_the_weighted_error_of_each_latents_patch() -> None:
    tokenizer, sample = small(), frames()[:2]
    weights = torch.ones(2, 1, 84, 84)
    weights[1, 0, 14:28, 28:42] = 5.0  # patch (1, 2) of the second frame
    _, _, errors = _encode_sample(tokenizer, sample, 256, weights)
    with torch.no_grad():
        x = torch.from_numpy(sample).float().div(255).unsqueeze(1)
        reconstruction = tokenizer.decode(tokenizer.encode(x).z_quantized)
    error = (reconstruction - x).abs() * weights
    assert errors.shape == (2 * 36,)
    assert torch.allclose(errors[36 + 1 * 6 + 2], error[1, 0, 14:28, 28:42].mean(), atol=1e-6)
    assert torch.allclose(errors[5], error[0, 0, 0:14, 70:84].mean(), atol=1e-6)


def test_a_bad_restart_rule_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="closest"):
        restart_weights(frames(), "closest")
