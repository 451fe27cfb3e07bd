"""VQ-VAE tokenizer: official layout and counts, bit-level parity with the official fixtures, API."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from jowa.compat.comparison import assert_close
from jowa.compat.tokenizer_parity import load_small_tokenizer, small_tokenizer_config, tokenizer_parity
from jowa.config import TokenizerConfig
from jowa.tokenizer import Tokenizer
from jowa.tokenizer.lpips import LPIPS
from jowa.tokenizer.quantizer import commitment_loss, nearest_tokens, squared_distances, straight_through


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def full() -> Tokenizer:
    torch.manual_seed(0)
    return Tokenizer(TokenizerConfig())


@pytest.fixture()
def small(reference_dir: Path) -> Tokenizer:
    return load_small_tokenizer(reference_dir)


@pytest.fixture(scope="module")
def io(reference_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(reference_dir / "jowa" / "tokenizer_small_io.safetensors"))


# ---------------------------------------------------------------- layout


def test_full_size_parameter_counts(full: Tokenizer) -> None:
    assert n_params(full) == 4_047_489
    assert n_params(full.encoder) == 1_272_064
    assert n_params(full.decoder) == 1_201_537
    assert n_params(full.embedding) == 1_048_576
    assert n_params(full.pre_quant_conv) + n_params(full.post_quant_conv) == 525_312
    assert full.tokens_per_frame == 36


def test_full_size_state_dict_is_the_official_one(full: Tokenizer, reference_dir: Path) -> None:
    official = json.loads((reference_dir / "jowa" / "full_size_state_dict_shapes.json").read_text())["tokenizer_full"]
    ours = {key: list(value.shape) for key, value in full.state_dict().items()}
    assert list(ours) == list(official)  # same keys in the same order
    assert ours == official
    assert len(ours) == 237


def test_small_fixture_loads_strictly(reference_dir: Path) -> None:
    tokenizer = Tokenizer(small_tokenizer_config(reference_dir))
    assert n_params(tokenizer) == 133_249
    state = load_file(str(reference_dir / "jowa" / "tokenizer_small_state_dict.safetensors"))
    tokenizer.load_state_dict(state, strict=True)
    assert state["encoder.down.0.downsample.conv.weight"].shape == (16, 16, 8, 8)  # the k8 s7 conv


def test_decoder_up_path_has_no_attention_by_default(full: Tokenizer) -> None:
    keys = full.state_dict().keys()
    assert not [k for k in keys if k.startswith("decoder.up.") and ".attn." in k]
    assert "decoder.mid.attn_1.q.weight" in keys
    assert {k.split(".attn.")[0] for k in keys if k.startswith("encoder.down.") and ".attn." in k} == {
        "encoder.down.1",
        "encoder.down.2",
    }


def test_decoder_up_attention_option(reference_dir: Path) -> None:
    config = dataclasses.replace(small_tokenizer_config(reference_dir), decoder_up_attention=True)
    tokenizer = Tokenizer(config)
    keys = tokenizer.state_dict().keys()
    up_attn = sorted({k.rsplit(".", 2)[0] for k in keys if k.startswith("decoder.up.") and ".attn." in k})
    # The decoder grid is 6 → 42 → 84, so only the 6×6 level (up[2]) meets attn_resolutions (6, 12).
    assert up_attn == [f"decoder.up.2.attn.{i}" for i in range(3)]
    out = tokenizer(torch.rand(2, 1, 84, 84))[2]
    assert out.shape == (2, 1, 84, 84)
    official = load_file(str(reference_dir / "jowa" / "tokenizer_small_state_dict.safetensors"))
    with pytest.raises(RuntimeError, match="Missing key"):
        tokenizer.load_state_dict(official, strict=True)  # not checkpoint-compatible, by design


def test_init_follows_the_spec(full: Tokenizer) -> None:
    bound = 1.0 / 2048
    assert full.embedding.weight.abs().max() <= bound
    w = full.encoder.down[1].block[0].conv1.weight.reshape(64, -1)  # [64, 576]: orthogonal rows, gain √2
    torch.testing.assert_close(w @ w.t(), 2.0 * torch.eye(64), atol=1e-4, rtol=0)
    assert full.encoder.conv_out.bias.abs().max() == 0
    assert full.decoder.norm_out.weight.eq(1).all()
    assert full.pre_quant_conv.bias.abs().max() > 0  # PyTorch default init, not zeroed


# ---------------------------------------------------------------- parity with the official code


def test_parity_with_official_fixtures(reference_dir: Path) -> None:
    rows = tokenizer_parity(reference_dir)
    names = {row.name for row in rows}
    assert {"z", "tokens", "reconstruction", "forward_reconstruction", "act_dec_after_up2_upsample"} <= names
    bad = [row for row in rows if not row.ok]
    assert not bad, bad
    tokens = next(row for row in rows if row.name == "tokens")
    assert tokens.exact and tokens.max_abs_error == 0


def test_losses_reproduce_official_values(small: Tokenizer, io: dict[str, torch.Tensor]) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the fixture's thread count; the loss is then bit-identical
    try:
        with torch.no_grad():
            losses = small.train().compute_loss(io["frames"])
    finally:
        torch.set_num_threads(threads)
    assert losses.commitment.item() == pytest.approx(0.3361256420612335, abs=1e-6)
    assert losses.reconstruction.item() == pytest.approx(0.7107698321342468, abs=1e-6)
    assert losses.perceptual.item() == 0.0
    assert losses.total.item() == pytest.approx(1.0468955039978027, abs=1e-6)
    assert losses.total.dim() == 0


def test_token_paths_agree_with_fixture(small: Tokenizer, io: dict[str, torch.Tensor]) -> None:
    tokens = small.encode_tokens(io["frames_uint8"][:, 0])  # uint8 [5, 84, 84]
    assert tokens.dtype == torch.int64 and torch.equal(tokens, io["tokens"])
    assert torch.equal(small.encode_tokens(io["frames"]), io["tokens"])  # float [5, 1, 84, 84]
    frames = small.decode_tokens(io["tokens"])
    assert_close(frames, io["reconstruction"])
    assert frames.max() > 1.0 or frames.min() < 0.0  # postprocess does not clamp (this fixture overshoots)


# ---------------------------------------------------------------- API behaviour


def test_leading_dimensions_are_kept(small: Tokenizer, io: dict[str, torch.Tensor]) -> None:
    frames = io["frames"][:4].reshape(2, 2, 1, 84, 84)
    encoding = small.encode(frames)
    assert encoding.z.shape == encoding.z_quantized.shape == (2, 2, 32, 6, 6)
    assert torch.equal(encoding.tokens, io["tokens"][:4].reshape(2, 2, 36))
    assert small.decode(encoding.z_quantized).shape == (2, 2, 1, 84, 84)
    assert small.decode_tokens(encoding.tokens).shape == (2, 2, 1, 84, 84)
    uint8 = io["frames_uint8"][:4, 0].reshape(2, 2, 84, 84)
    assert torch.equal(small.encode_tokens(uint8), encoding.tokens)
    single = small.encode(io["frames"][0])  # one frame [1, 84, 84]: no leading dimension
    assert single.z.shape == (32, 6, 6) and torch.equal(single.tokens, io["tokens"][0])
    assert torch.equal(small.encode_tokens(io["frames_uint8"][0, 0]), io["tokens"][0])  # uint8 [84, 84]
    assert small.decode_tokens(io["tokens"][0]).shape == (1, 84, 84)


def test_bad_inputs_fail_clearly(small: Tokenizer) -> None:
    with pytest.raises(ValueError, match=r"\[\.\.\., 1, 84, 84\]"):
        small.encode(torch.rand(2, 1, 64, 64))
    with pytest.raises(ValueError, match="84"):
        small.encode_tokens(torch.rand(84, 84))  # float frames need the channel axis
    with pytest.raises(ValueError, match="resolution"):
        Tokenizer(TokenizerConfig(resolution=64, ch=8, z_channels=8, embed_dim=8, vocab_size=8))
    with pytest.raises(ValueError, match="lpips_net"):
        Tokenizer(dataclasses.replace(small.config, lpips_net="squeeze"))


def test_forward_is_straight_through(small: Tokenizer, io: dict[str, torch.Tensor]) -> None:
    z, z_q, reconstruction = small(io["frames"][:2], preprocess=True, postprocess=True)
    assert reconstruction.shape == (2, 1, 84, 84)
    # Decoded from the value of z_q …
    torch.testing.assert_close(reconstruction, small.decode(z_q), atol=1e-5, rtol=0)
    # … with the gradient of z.
    x = z.detach().requires_grad_(True)
    straight_through(x, z_q.detach()).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_loss_gradients_reach_every_part(small: Tokenizer, io: dict[str, torch.Tensor]) -> None:
    small.train().compute_loss(io["frames"]).total.backward()
    assert small.encoder.conv_in.weight.grad.abs().sum() > 0  # through the straight-through path
    assert small.decoder.conv_out.weight.grad.abs().sum() > 0
    used = torch.zeros(64, dtype=torch.bool)
    used[io["tokens"].unique()] = True
    row_grad = small.embedding.weight.grad.abs().sum(dim=1)
    assert (row_grad[used] > 0).all() and (row_grad[~used] == 0).all()  # only chosen codes move


def test_quantizer_rules() -> None:
    codebook = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])  # rows 1 and 2 tie
    z = torch.tensor([[0.9, 0.1], [0.1, 0.9], [-1.0, 0.0], [0.0, 1.0]]).t().reshape(1, 2, 2, 2)  # [B, E, h, w]
    assert nearest_tokens(z, codebook).tolist() == [[0, 1, 3, 1]]  # row-major; tie → lowest index
    z_flat = torch.randn(7, 2)
    expected = torch.cdist(z_flat, codebook) ** 2
    torch.testing.assert_close(squared_distances(z_flat, codebook), expected, atol=1e-5, rtol=0)
    zz, qq = torch.tensor([1.0, 2.0], requires_grad=True), torch.tensor([0.0, 0.0], requires_grad=True)
    commitment_loss(zz, qq, beta=0.25).backward()
    torch.testing.assert_close(zz.grad, 0.25 * zz.detach())  # β·mean((z − sg(q))²) → β·(z − q)
    torch.testing.assert_close(qq.grad, -zz.detach())  # mean((sg(z) − q)²) → −(z − q)


def test_nearest_code_search_is_fp32_under_autocast() -> None:
    # Random latents against a dense codebook: a bf16 search picks another code for 23 of 2,304 positions.
    g = torch.Generator().manual_seed(0)
    z, codebook = torch.randn(64, 64, 6, 6, generator=g), torch.randn(512, 64, generator=g) * 0.5
    fp32 = nearest_tokens(z, codebook)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(nearest_tokens(z, codebook), fp32)
        assert squared_distances(z[:, :, 0, 0], codebook).dtype == torch.float32


def test_save_and_load_pretrained(small: Tokenizer, io: dict[str, torch.Tensor], tmp_path: Path) -> None:
    small.save_pretrained(tmp_path / "tok")
    keys = load_file(str(tmp_path / "tok" / "model.safetensors")).keys()
    assert not [k for k in keys if "lpips" in k] and len(keys) == 237
    loaded = Tokenizer.from_pretrained(tmp_path / "tok")
    assert loaded.config == small.config
    assert torch.equal(loaded.encode_tokens(io["frames"]), io["tokens"])


# ---------------------------------------------------------------- the perceptual term


def test_lpips_stays_out_of_the_state_dict_and_follows_the_module(
    reference_dir: Path, io: dict[str, torch.Tensor]
) -> None:
    config = dataclasses.replace(small_tokenizer_config(reference_dir), lpips_net="vgg", lpips_dropout=0.0)
    tokenizer = Tokenizer(config)
    keys_before, params_before = list(tokenizer.state_dict()), n_params(tokenizer)
    losses = tokenizer.train().compute_loss(io["frames"][2:3])
    assert 0.0 < losses.perceptual.item() < 2.0
    torch.testing.assert_close(losses.total, losses.commitment + losses.reconstruction + losses.perceptual)
    losses.total.backward()
    net = tokenizer.perceptual_net()
    assert isinstance(net, LPIPS) and net.training
    assert list(tokenizer.state_dict()) == keys_before and n_params(tokenizer) == params_before
    assert not any(p.requires_grad for p in net.parameters())
    assert tokenizer.decoder.conv_out.weight.grad.abs().sum() > 0
    tokenizer.eval()
    assert not net.training
    tokenizer.double()
    assert net.lin0.model[1].weight.dtype == torch.float64 and net.scaling_layer.shift.dtype == torch.float64
    assert net.net.slice5[-2].weight.dtype == torch.float64  # last VGG conv


def test_lpips_dropout_is_active_in_training_like_the_official(
    reference_dir: Path, io: dict[str, torch.Tensor]
) -> None:
    tokenizer = load_small_tokenizer(reference_dir)
    tokenizer.config = dataclasses.replace(tokenizer.config, lpips_net="alex")  # official dropout 0.5
    frames = io["frames"][:2]
    with torch.no_grad():
        torch.manual_seed(0)
        a = tokenizer.train().compute_loss(frames).perceptual
        b = tokenizer.compute_loss(frames).perceptual
        c = tokenizer.eval().compute_loss(frames).perceptual
        d = tokenizer.compute_loss(frames).perceptual
    assert a != b  # dropout noise
    assert c == d  # deterministic in eval mode
    assert tokenizer.perceptual_net().lin0.model[0].p == 0.5


def test_perceptual_term_off(small: Tokenizer, io: dict[str, torch.Tensor]) -> None:
    small.config = dataclasses.replace(small.config, lpips_net="vgg", perceptual_weight=0.0)
    assert small.perceptual_net() is None
    assert small.compute_loss(io["frames"][:1]).perceptual.item() == 0.0


def test_foreground_weighting_is_off_by_default_and_weighs_object_pixels(small: Tokenizer) -> None:
    from jowa.training.objective_modules import TokenizerObjective, foreground_weights

    backgrounds = torch.stack([torch.zeros(84, 84, dtype=torch.uint8), torch.full((84, 84), 140, dtype=torch.uint8)])
    frames = backgrounds[[0, 1, 1]].clone()
    frames[0, 10:12, 20:22] = 200  # a 2×2 ball on the black game
    frames[2, 40:44, 40:41] = 10  # a dark bar on the grey game
    weights = foreground_weights(frames, backgrounds, 9.0)  # [3, 1, 84, 84]
    assert weights.shape == (3, 1, 84, 84) and weights.sum() == 3 * 84 * 84 + 9.0 * (4 + 4)
    assert weights[0, 0, 10, 20] == 10.0 and weights[1].eq(1).all() and weights[2, 0, 41, 40] == 10.0
    torch.manual_seed(0)
    plain = TokenizerObjective(small.train())(frames).terms
    torch.manual_seed(0)
    off = TokenizerObjective(small, backgrounds, foreground_weight=0.0)(frames).terms  # 0: the official loss
    assert all(torch.equal(plain[k], off[k]) for k in plain)
    torch.manual_seed(0)
    on = TokenizerObjective(small, backgrounds, foreground_weight=9.0)(frames).terms
    assert torch.equal(on["commitment"], plain["commitment"]) and not torch.equal(on["reconstruction"], plain["reconstruction"])


def test_motion_weighting_weighs_the_pixels_that_changed_since_the_previous_frame(small: Tokenizer) -> None:
    from jowa.training.objective_modules import TokenizerObjective, foreground_weights

    backgrounds = torch.zeros(1, 84, 84, dtype=torch.uint8)
    previous = torch.zeros(2, 84, 84, dtype=torch.uint8)
    previous[:, 60:64, 0:30] = 120  # a still paddle
    frames = previous.clone()
    frames[0, 10:12, 20:22] = 200  # the ball appears: 4 changed pixels
    pairs = torch.stack([frames, previous], 1)  # [2, 2, 84, 84]
    expected = foreground_weights(frames, backgrounds, 9.0)
    expected[0, 0, 10:12, 20:22] += 50.0
    torch.manual_seed(0)
    on = TokenizerObjective(small.train(), backgrounds, 9.0, motion_weight=50.0)(pairs).terms
    torch.manual_seed(0)
    by_hand = small.compute_loss(frames, pixel_weights=expected)
    assert torch.equal(on["reconstruction"], by_hand.reconstruction.detach().float())
    torch.manual_seed(0)
    still = TokenizerObjective(small, backgrounds, 9.0)(pairs).terms  # pairs without the motion weight
    torch.manual_seed(0)
    assert torch.equal(still["reconstruction"], TokenizerObjective(small, backgrounds, 9.0)(frames).terms["reconstruction"])
    with pytest.raises(ValueError, match="needs uint8 frames beside their previous frames"):
        TokenizerObjective(small, motion_weight=50.0)(frames)


def test_pixel_loss_l2_is_the_weighted_mean_squared_error(small: Tokenizer) -> None:
    from jowa.training.objective_modules import TokenizerObjective, foreground_weights
    from jowa.tokenizer.tokenizer import preprocess_frames

    backgrounds = torch.zeros(1, 84, 84, dtype=torch.uint8)
    frames = backgrounds[[0, 0]].clone()
    frames[0, 10:12, 20:22] = 110  # a 2×2 ball
    small.eval()  # no LPIPS dropout: the reconstruction below is the loss's own
    with torch.no_grad():
        x = preprocess_frames(frames.float().div(255).unsqueeze(1))
        squared = (small(x, preprocess=False, postprocess=False)[2] - x).square()
        weights = foreground_weights(frames, backgrounds, 9.0)
        by_hand = (weights * squared).sum() / weights.sum()
        l2 = TokenizerObjective(small, backgrounds, 9.0, pixel_loss="l2")(frames).terms
        l1 = TokenizerObjective(small, backgrounds, 9.0)(frames).terms
    assert torch.allclose(l2["reconstruction"], by_hand, rtol=1e-6) and not torch.allclose(l1["reconstruction"], by_hand)
    assert torch.equal(l2["commitment"], l1["commitment"])
    with pytest.raises(ValueError, match="pixel_loss 'l3'"):
        small.compute_loss(frames, pixel_loss="l3")
