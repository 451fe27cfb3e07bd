"""Parity of our tokenizer with the official one, measured on the reference fixtures.

`tokenizer_parity(reference_dir)` loads the small official tokenizer weights, reruns every stored
computation (encode, decode, forward, losses, intermediate activations) and returns one `ParityRow`
per quantity. Floats are held to the project's one criterion (jowa/compat/comparison.py: atol 1e-5 +
rtol 1.3e-6 × the quantity's largest magnitude; activations reach ~15, where another CPU's summation order
moves them by ~2.5e-5); tokens must match exactly. On the fixtures' own machine kind (Intel AVX-512, one thread)
every row is bit-identical; on AMD Zen 3 (AVX2) a few activations differ by 10–20 ulps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from jowa.compat.comparison import ParityRow, compare
from jowa.config import TokenizerConfig
from jowa.tokenizer.quantizer import distance_gap
from jowa.tokenizer.tokenizer import Tokenizer

WEIGHTS_FILE = "tokenizer_small_state_dict.safetensors"
IO_FILE = "tokenizer_small_io.safetensors"
DESCRIPTION_FILE = "description.json"

# fixture name → our module path whose forward output it records
ENCODER_ACTIVATIONS = {
    "act_enc_after_down0": "encoder.down.0.downsample",
    "act_enc_after_down1": "encoder.down.1.downsample",
    "act_enc_out": "encoder",
}
DECODER_ACTIVATIONS = {
    "act_dec_after_conv_in": "decoder.conv_in",
    "act_dec_after_mid_attn": "decoder.mid.attn_1",
    "act_dec_after_up2_upsample": "decoder.up.2.upsample",
    "act_dec_out": "decoder",
}


def fixture_dir(reference_dir: str | Path) -> Path:
    """Accept either `…/reference` or `…/reference/jowa`."""
    path = Path(reference_dir)
    return path / "jowa" if (path / "jowa" / IO_FILE).is_file() else path


def small_tokenizer_config(reference_dir: str | Path) -> TokenizerConfig:
    """The small fixture tokenizer (description.json → configs.tokenizer_small); LPIPS off, as there."""
    description = json.loads((fixture_dir(reference_dir) / DESCRIPTION_FILE).read_text())
    small = description["configs"]["tokenizer_small"]
    nets: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in small["encoder_decoder"].items()}
    return TokenizerConfig(vocab_size=small["vocab_size"], embed_dim=small["embed_dim"], lpips_net="none", **nets)


def load_small_tokenizer(reference_dir: str | Path) -> Tokenizer:
    tokenizer = Tokenizer(small_tokenizer_config(reference_dir))
    tokenizer.load_state_dict(load_file(str(fixture_dir(reference_dir) / WEIGHTS_FILE)), strict=True)
    return tokenizer


@contextmanager
def recorded_outputs(model: nn.Module, paths: dict[str, str]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the forward outputs of the named submodules while the block runs."""
    modules = dict(model.named_modules())
    store: dict[str, torch.Tensor] = {}
    handles = [
        modules[path].register_forward_hook(lambda _m, _i, out, name=name: store.__setitem__(name, out.detach()))
        for name, path in paths.items()
    ]
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def reference_numerics() -> Iterator[None]:
    """Numerics of the fixture run: one intra-op CPU thread (2 threads move activations by up to
    1.6e-5) and no TF32 on CUDA (cuDNN convs default to TF32, ~1e-3 off)."""
    threads, cudnn_tf32, matmul_tf32 = (
        torch.get_num_threads(),
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
    )
    torch.set_num_threads(1)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn_tf32, matmul_tf32


def tokenizer_parity(reference_dir: str | Path, device: str | torch.device = "cpu") -> list[ParityRow]:
    """Rerun the official tokenizer computations stored in `tokenizer_small_io.safetensors` on `device`."""
    directory = fixture_dir(reference_dir)
    io = load_file(str(directory / IO_FILE))
    description = json.loads((directory / DESCRIPTION_FILE).read_text())
    expected_total = torch.tensor(description["results"]["tokenizer_small"]["loss_total_without_lpips"])
    expected_params = description["param_counts_small"]["tokenizer_small_params"]
    tokenizer = load_small_tokenizer(directory).to(device).train()  # official compute_loss ran in train mode
    frames = io["frames"].to(device)  # [5, 1, 84, 84] in [0, 1]
    rows: list[ParityRow] = []
    with reference_numerics(), torch.no_grad():
        with recorded_outputs(tokenizer, ENCODER_ACTIVATIONS) as encoder_acts:
            encoding = tokenizer.encode(frames, preprocess=True)
        with recorded_outputs(tokenizer, DECODER_ACTIVATIONS) as decoder_acts:
            reconstruction = tokenizer.decode(encoding.z_quantized, postprocess=True)
        z, z_q, forward_reconstruction = tokenizer(frames, preprocess=True, postprocess=False)
        losses = tokenizer.compute_loss(frames)
        tokens_from_uint8 = tokenizer.encode_tokens(io["frames_uint8"][:, 0])  # uint8 [5, 84, 84]
        decoded_tokens = tokenizer.decode_tokens(io["tokens"].to(device))
        # from the fixture's z: the row checks the distance arithmetic, not z's error (z has its own row)
        gap = distance_gap(io["z"].to(device), tokenizer.embedding.weight)
    params = sum(p.numel() for p in tokenizer.parameters())
    rows += [
        compare("z", encoding.z, io["z"]),
        compare("z_quantized", encoding.z_quantized, io["z_quantized"]),
        compare("tokens", encoding.tokens, io["tokens"]),
        compare("quantisation_distance_gap", gap, io["quantisation_distance_gap"]),
        compare("reconstruction", reconstruction, io["reconstruction"]),
        compare("forward_z", z, io["forward_z"]),
        compare("forward_z_quantized", z_q, io["forward_z_quantized"]),
        compare("forward_reconstruction", forward_reconstruction, io["forward_reconstruction"]),
        *(compare(name, encoder_acts[name], io[name]) for name in ENCODER_ACTIVATIONS),
        *(compare(name, decoder_acts[name], io[name]) for name in DECODER_ACTIVATIONS),
        compare("commitment_loss", losses.commitment, io["commitment_loss"]),
        compare("reconstruction_loss", losses.reconstruction, io["reconstruction_loss"]),
        compare("loss_total_without_lpips", losses.total, expected_total),
        compare("encode_tokens(uint8)", tokens_from_uint8, io["tokens"]),
        compare("decode_tokens", decoded_tokens, io["reconstruction"]),
        compare("parameter_count", torch.tensor(params), torch.tensor(expected_params)),
    ]
    return rows
