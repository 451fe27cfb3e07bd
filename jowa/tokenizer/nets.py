"""Encoder and decoder of the VQ-VAE tokenizer (docs/official_jowa.md §2.2, §2.4, §2.5).

Taming/IRIS-style nets with JOWA's changes: GroupNorm with 2 groups, a first down-sampling by 7
(pad right/bottom by 1, conv kernel 8, stride 7: 84 → 12) and a first up-sampling by 7 (nearest ×7
then conv: 6 → 42). Module names mirror the official ones so official state dicts load unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from jowa.config import TokenizerConfig

# (kernel, stride) of the encoder's down-sampling convs: ÷7 at the first level, ÷2 after that.
FIRST_DOWN = (8, 7)
LATER_DOWN = (3, 2)
FIRST_UP, LATER_UP = 7, 2
# Official quirk: the decoder's resolution counter starts at 4 ("# 6  # bug in decoder"), so with
# attention at {6, 12} its up path never gets attention blocks.
OFFICIAL_DECODER_START_RESOLUTION = 4


def swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


def group_norm(channels: int) -> nn.GroupNorm:
    """JOWA uses 2 groups (IRIS: 32), eps 1e-6, affine."""
    return nn.GroupNorm(num_groups=2, num_channels=channels, eps=1e-6, affine=True)


def down_factors(num_levels: int) -> list[tuple[int, int]]:
    """(kernel, stride) of each of the `num_levels - 1` down-sampling convs, in encoder order."""
    return [FIRST_DOWN if i == 0 else LATER_DOWN for i in range(num_levels - 1)]


def up_factors(num_levels: int) -> list[int]:
    """Nearest-neighbour scale of each up-sampling, in the order the decoder applies them."""
    return [FIRST_UP if i == 0 else LATER_UP for i in range(num_levels - 1)]


def downsampled_size(size: int, kernel: int, stride: int) -> int:
    """Spatial size after padding right/bottom by 1 and a valid conv."""
    return (size + 1 - kernel) // stride + 1


def encoder_resolutions(config: TokenizerConfig) -> list[int]:
    """Resolution of each encoder level; the last one is the latent grid side (84 → 12 → 6)."""
    sizes = [config.resolution]
    for kernel, stride in down_factors(len(config.ch_mult)):
        sizes.append(downsampled_size(sizes[-1], kernel, stride))
    return sizes


def latent_side(config: TokenizerConfig) -> int:
    return encoder_resolutions(config)[-1]


class ResnetBlock(nn.Module):
    """GN → swish → conv3×3 → GN → swish → dropout → conv3×3, plus the skip (1×1 conv if widths
    differ; never in the official configs)."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C_in, H, W] → [B, C_out, H, W]
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(self.dropout(swish(self.norm2(h))))
        if self.in_channels != self.out_channels:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the H·W positions, scale C^-0.5, residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.q = nn.Conv2d(channels, channels, 1, 1, 0)
        self.k = nn.Conv2d(channels, channels, 1, 1, 0)
        self.v = nn.Conv2d(channels, channels, 1, 1, 0)
        self.proj_out = nn.Conv2d(channels, channels, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W]
        h = self.norm(x)
        b, c, height, width = x.shape
        q = self.q(h).reshape(b, c, height * width).permute(0, 2, 1)  # [B, HW, C]
        k = self.k(h).reshape(b, c, height * width)  # [B, C, HW]
        v = self.v(h).reshape(b, c, height * width)  # [B, C, HW]
        # Same bmm order as the official block, so float rounding matches it.
        weights = torch.bmm(q, k) * (int(c) ** (-0.5))  # [B, HW_q, HW_k]
        weights = F.softmax(weights, dim=2)
        out = torch.bmm(v, weights.permute(0, 2, 1))  # [B, C, HW_q]
        return x + self.proj_out(out.reshape(b, c, height, width))


class Downsample(nn.Module):
    """Zero-pad right/bottom by 1, then a valid conv (k8 s7 or k3 s2)."""

    def __init__(self, channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=kernel, stride=stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] → [B, C, H', W']
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class Upsample(nn.Module):
    """Nearest-neighbour ×scale, then conv3×3."""

    def __init__(self, channels: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] → [B, C, sH, sW]
        return self.conv(F.interpolate(x, scale_factor=float(self.scale), mode="nearest"))


def _mid_block(channels: int, dropout: float) -> nn.Module:
    mid = nn.Module()
    mid.block_1 = ResnetBlock(channels, channels, dropout)
    mid.attn_1 = AttnBlock(channels)
    mid.block_2 = ResnetBlock(channels, channels, dropout)
    return mid


def _run_mid(mid: nn.Module, h: torch.Tensor) -> torch.Tensor:
    return mid.block_2(mid.attn_1(mid.block_1(h)))


def _run_level(level: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """ResBlocks of one level, each followed by its attention block when the level has them."""
    for i, block in enumerate(level.block):
        h = block(h)
        if len(level.attn) > 0:
            h = level.attn[i](h)
    return h


class Encoder(nn.Module):
    """[B, in_channels, 84, 84] → [B, z_channels, 6, 6]."""

    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        self.num_levels = len(config.ch_mult)
        resolutions = encoder_resolutions(config)
        downs = down_factors(self.num_levels)
        in_ch_mult = (1, *config.ch_mult)
        self.conv_in = nn.Conv2d(config.in_channels, config.ch, 3, 1, 1)
        self.down = nn.ModuleList()
        for i_level in range(self.num_levels):
            block_in = config.ch * in_ch_mult[i_level]
            block_out = config.ch * config.ch_mult[i_level]
            level = nn.Module()
            level.block = nn.ModuleList()
            level.attn = nn.ModuleList()
            for _ in range(config.num_res_blocks):
                level.block.append(ResnetBlock(block_in, block_out, config.dropout))
                block_in = block_out
                if resolutions[i_level] in config.attn_resolutions:
                    level.attn.append(AttnBlock(block_in))
            if i_level != self.num_levels - 1:
                level.downsample = Downsample(block_in, *downs[i_level])
            self.down.append(level)
        self.mid = _mid_block(block_in, config.dropout)
        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, config.z_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C_in, H, W] → [B, z_channels, h, w]
        h = self.conv_in(x)
        for i_level, level in enumerate(self.down):
            h = _run_level(level, h)
            if i_level != self.num_levels - 1:
                h = level.downsample(h)
        h = _run_mid(self.mid, h)
        return self.conv_out(swish(self.norm_out(h)))


class Decoder(nn.Module):
    """[B, z_channels, 6, 6] → [B, out_ch, 84, 84] (in [-1, 1] space)."""

    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        self.num_levels = len(config.ch_mult)
        ups = up_factors(self.num_levels)
        block_in = config.ch * config.ch_mult[-1]
        # The counter only decides where attention goes; the real grid is always latent_side.
        res = latent_side(config) if config.decoder_up_attention else OFFICIAL_DECODER_START_RESOLUTION
        self.conv_in = nn.Conv2d(config.z_channels, block_in, 3, 1, 1)
        self.mid = _mid_block(block_in, config.dropout)
        levels: list[nn.Module] = []
        for step, i_level in enumerate(reversed(range(self.num_levels))):
            block_out = config.ch * config.ch_mult[i_level]
            level = nn.Module()
            level.block = nn.ModuleList()
            level.attn = nn.ModuleList()
            for _ in range(config.num_res_blocks + 1):
                level.block.append(ResnetBlock(block_in, block_out, config.dropout))
                block_in = block_out
                if res in config.attn_resolutions:
                    level.attn.append(AttnBlock(block_in))
            if i_level != 0:
                level.upsample = Upsample(block_in, ups[step])
                res *= ups[step]
            levels.insert(0, level)  # up[i] is the level at encoder depth i
        self.up = nn.ModuleList(levels)
        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, config.out_ch, 3, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [B, z_channels, h, w] → [B, out_ch, H, W]
        h = _run_mid(self.mid, self.conv_in(z))
        for i_level in reversed(range(self.num_levels)):
            h = _run_level(self.up[i_level], h)
            if i_level != 0:
                h = self.up[i_level].upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


def init_weights(module: nn.Module) -> None:
    """docs/official_jowa.md §2.5: convs (and linears) orthogonal with the ReLU gain √2, biases 0; GroupNorm 1/0."""
    gain = math.sqrt(2.0)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.GroupNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
