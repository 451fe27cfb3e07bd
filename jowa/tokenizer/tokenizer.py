"""The VQ-VAE tokenizer (docs/official_jowa.md §2): frame [1, 84, 84] in [0, 1] ↔ 36 tokens (6×6) of a 2048-code book.

Submodules and their order mirror the official `Tokenizer` (encoder, pre_quant_conv, embedding,
post_quant_conv, decoder), so official state dicts load with `strict=True`. The LPIPS net of the
perceptual loss is deliberately *not* a registered submodule: it is frozen, comes from its own weight
files, and must stay out of `state_dict()` and `parameters()`. It is built on first use and follows
`.to()`, `.train()` and `.eval()` of the tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import nn

from jowa.config import TokenizerConfig
from jowa.model_files import PretrainedMixin
from jowa.tokenizer.lpips import NETS
from jowa.tokenizer.lpips_package import build_lpips, check_backend
from jowa.tokenizer.nets import Decoder, Encoder, init_weights, latent_side, up_factors
from jowa.tokenizer.quantizer import Codebook, commitment_loss, nearest_tokens, straight_through

PIXEL_LOSSES = ("l1", "l2")  # the per-pixel reconstruction error; l1 is the official, l2 ours


class TokenizerEncoding(NamedTuple):
    z: torch.Tensor  # [..., E, h, w] pre_quant_conv output
    z_quantized: torch.Tensor  # [..., E, h, w] codebook vectors of the tokens
    tokens: torch.Tensor  # [..., h·w] int64, row-major over (h, w)


@dataclass
class TokenizerLosses:
    """0-dim tensors; `total` = commitment + reconstruction_weight·reconstruction + perceptual."""

    commitment: torch.Tensor  # codebook + β·commitment
    reconstruction: torch.Tensor  # L1 in [-1, 1] space, unweighted
    perceptual: torch.Tensor  # LPIPS, already × perceptual_weight
    total: torch.Tensor


def preprocess_frames(frames: torch.Tensor) -> torch.Tensor:
    """[0, 1] → [-1, 1] (official `x.mul(2).sub(1)`)."""
    return frames.mul(2).sub(1)


def postprocess_frames(y: torch.Tensor) -> torch.Tensor:
    """[-1, 1] → [0, 1], not clamped (only the world-model environment clamps)."""
    return y.add(1).div(2)


def unit_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [..., H, W] → float32 [..., 1, H, W] / 255; float frames [..., C, H, W] pass through."""
    if frames.dtype == torch.uint8:
        return (frames.to(torch.float32) / 255.0).unsqueeze(-3)
    return frames


def validate_config(config: TokenizerConfig) -> None:
    """Fail at construction, naming the field, rather than deep inside a forward pass."""
    side = latent_side(config)
    decoded = side
    for scale in up_factors(len(config.ch_mult)):
        decoded *= scale
    if decoded != config.resolution:
        raise ValueError(
            f"TokenizerConfig: resolution {config.resolution} with {len(config.ch_mult)} levels (ch_mult) "
            f"encodes to {side}×{side} but decodes to {decoded}×{decoded}; the official layout is 84 with 3 levels"
        )
    if config.lpips_net not in (*NETS, "none"):
        raise ValueError(f"TokenizerConfig.lpips_net: {config.lpips_net!r}; choose one of {', '.join((*NETS, 'none'))}")
    if not 0.0 <= config.lpips_dropout < 1.0:
        raise ValueError(f"TokenizerConfig.lpips_dropout: {config.lpips_dropout} is not in [0, 1)")
    check_backend(config.lpips_backend)


class Tokenizer(nn.Module, PretrainedMixin):
    kind = "tokenizer"
    config_class = TokenizerConfig

    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        validate_config(config)
        self.config = config
        self.latent_side = latent_side(config)
        self.tokens_per_frame = self.latent_side**2
        self.encoder = Encoder(config)
        self.pre_quant_conv = nn.Conv2d(config.z_channels, config.embed_dim, 1)
        self.embedding = Codebook(config.vocab_size, config.embed_dim)
        self.post_quant_conv = nn.Conv2d(config.embed_dim, config.z_channels, 1)
        self.decoder = Decoder(config)
        # Orthogonal init inside encoder/decoder only; the 1×1 quant convs keep PyTorch's default.
        init_weights(self.encoder)
        init_weights(self.decoder)
        object.__setattr__(self, "_lpips", None)  # unregistered on purpose (module docstring)

    # ------------------------------------------------------------ frames ↔ latents ↔ tokens

    def _check_frames(self, frames: torch.Tensor) -> None:
        c, r = self.config.in_channels, self.config.resolution
        if frames.dim() < 3 or tuple(frames.shape[-3:]) != (c, r, r):
            raise ValueError(f"Tokenizer expects frames [..., {c}, {r}, {r}], got {tuple(frames.shape)}")

    def encode(self, frames: torch.Tensor, preprocess: bool = True) -> TokenizerEncoding:
        """frames [..., 1, 84, 84] in [0, 1] (or [-1, 1] with preprocess=False)."""
        self._check_frames(frames)
        x = preprocess_frames(frames) if preprocess else frames
        lead = x.shape[:-3]
        z = self.pre_quant_conv(self.encoder(x.reshape(-1, *x.shape[-3:])))  # [N, E, h, w]
        z_q, tokens = self.embedding.quantize(z)  # [N, E, h, w], [N, h·w]
        return TokenizerEncoding(
            z.reshape(*lead, *z.shape[1:]), z_q.reshape(*lead, *z_q.shape[1:]), tokens.reshape(*lead, -1)
        )

    @torch.no_grad()
    def encode_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        """Float frames [..., 1, 84, 84] in [0, 1] or uint8 frames [..., 84, 84] → tokens [..., 36] int64."""
        x = unit_frames(frames.to(self.embedding.weight.device))  # move uint8 first: 4× less traffic
        self._check_frames(x)
        lead = x.shape[:-3]
        z = self.pre_quant_conv(self.encoder(preprocess_frames(x).reshape(-1, *x.shape[-3:])))  # [N, E, h, w]
        return nearest_tokens(z, self.embedding.weight).reshape(*lead, -1)

    def decode(self, z_quantized: torch.Tensor, postprocess: bool = True) -> torch.Tensor:
        """z_quantized [..., E, 6, 6] → frames [..., 1, 84, 84] in [0, 1] (unclamped) or [-1, 1]."""
        lead = z_quantized.shape[:-3]
        y = self.decoder(self.post_quant_conv(z_quantized.reshape(-1, *z_quantized.shape[-3:])))
        y = y.reshape(*lead, *y.shape[1:])
        return postprocess_frames(y) if postprocess else y

    @torch.no_grad()
    def decode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [..., 36] → frames [..., 1, 84, 84] in [0, 1], unclamped."""
        return self.decode(self.embedding.lookup(tokens, self.latent_side), postprocess=True)

    def forward(
        self, frames: torch.Tensor, preprocess: bool = True, postprocess: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z, z_quantized, reconstruction); the decoder reads the straight-through z + sg(z_q − z)."""
        encoding = self.encode(frames, preprocess)
        reconstruction = self.decode(straight_through(encoding.z, encoding.z_quantized), postprocess)
        return encoding.z, encoding.z_quantized, reconstruction

    # ------------------------------------------------------------ losses

    def perceptual_net(self) -> nn.Module | None:
        """The frozen LPIPS net, built (and its weights read) on first call; None when disabled.
        Call it once before training to fail early on missing weights."""
        if self.config.perceptual_weight <= 0 or self.config.lpips_net == "none":
            return None
        if self._lpips is None:
            config = self.config
            net = build_lpips(config.lpips_backend, config.lpips_net, config.lpips_weights, config.lpips_dropout)
            weight = self.embedding.weight
            net = net.to(device=weight.device, dtype=weight.dtype).train(self.training)
            object.__setattr__(self, "_lpips", net)
        return self._lpips

    def perceptual_loss(self, x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        """perceptual_weight × mean over the batch of LPIPS; x, reconstruction [N, C, H, W] in [-1, 1]."""
        net = self.perceptual_net()
        if net is None:
            return x.new_zeros(())
        return torch.mean(net(_as_rgb(x), _as_rgb(reconstruction))) * self.config.perceptual_weight

    def compute_loss(self, frames: torch.Tensor, pixel_weights: torch.Tensor | None = None,
                     pixel_loss: str = "l1") -> TokenizerLosses:
        """frames [..., 1, 84, 84] in [0, 1] (or uint8 [..., 84, 84]); all frames form one batch.

        pixel_weights [N, 1, 84, 84] (ours, not official): the L1 term becomes the weighted mean
        Σ w·|x − x̂| / Σ w; None is the official plain mean. pixel_loss "l2" (ours) squares the error instead."""
        if pixel_loss not in PIXEL_LOSSES:
            raise ValueError(f"pixel_loss {pixel_loss!r}: choose one of {PIXEL_LOSSES} (l1 is the official)")
        frames = unit_frames(frames)
        self._check_frames(frames)
        x = preprocess_frames(frames.reshape(-1, *frames.shape[-3:]))  # [N, 1, 84, 84] in [-1, 1]
        z, z_q, reconstruction = self(x, preprocess=False, postprocess=False)
        commitment = commitment_loss(z, z_q, self.config.commitment_beta)
        error = torch.abs(x - reconstruction) if pixel_loss == "l1" else torch.square(x - reconstruction)
        pixel = error.mean() if pixel_weights is None else (pixel_weights * error).sum() / pixel_weights.sum()
        perceptual = self.perceptual_loss(x, reconstruction)
        # Summed in the official order (commitment, reconstruction, perceptual).
        total = commitment + self.config.reconstruction_weight * pixel + perceptual
        return TokenizerLosses(commitment=commitment, reconstruction=pixel, perceptual=perceptual, total=total)

    # ------------------------------------------------------------ keep the unregistered LPIPS in step

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> "Tokenizer":
        super()._apply(fn, recurse)  # .to(), .cuda(), .half(), … all end here
        if self._lpips is not None:
            self._lpips._apply(fn, recurse)
        return self

    def train(self, mode: bool = True) -> "Tokenizer":
        super().train(mode)
        if self._lpips is not None:
            self._lpips.train(mode)  # official quirk: LPIPS dropout is active while the tokenizer trains
        return self


def _as_rgb(x: torch.Tensor) -> torch.Tensor:
    """[N, 1, H, W] → [N, 3, H, W] (gray repeated); 3-channel input passes through."""
    if x.shape[1] == 3:
        return x
    if x.shape[1] != 1:
        raise ValueError(f"LPIPS needs 1- or 3-channel images, got {x.shape[1]} channels")
    return x.expand(-1, 3, -1, -1)
