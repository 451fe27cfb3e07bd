"""Dead-code restarts for the VQ codebook (ours, not official: `tokenizer.code_restart_every`, 0 = off).

The official codebook starts at uniform(−1/K, 1/K), tiny next to the encoder's latents, and has no EMA
and no restarts (docs/official_jowa.md §2.3). With few steps only a handful of codes ever win the
nearest-code search (measured: 8 of 512 for `tiny` after 200 steps) and the other codes never move,
so nothing is left to describe a ball or a shot. Every `every` steps this hook encodes a fixed frame
sample, and moves each code that no latent of the sample chose onto a latent of the sample (the usual
restart, e.g. Dhariwal et al. 2020, "Jukebox"), drawn with probability ∝ its squared distance to its
nearest code as in k-means++ (`tokenizer.code_restart_by: latent`). That finds latents far from every
code, but a ball's latent can sit next to the empty patch's code and still be drawn as empty; with
`code_restart_by: pixels` the codes go, without replacement, to the latents whose patches are reconstructed
worst, each drawn ∝ the squared mean of its patch's pixel error weighted like the loss (1 + foreground_weight
on the pixels unlike the game's background). It is a function of the weights, the sample and the step only,
so a resumed run restarts exactly as a straight one did.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from jowa.tokenizer import Tokenizer
from jowa.tokenizer.quantizer import flatten_latents, squared_distances
from jowa.training.config import RESTART_BY
from jowa.training.logger import TrainLogger
from jowa.training.objective_modules import foreground_weights


@torch.no_grad()
def sample_latents(tokenizer: Tokenizer, frames: np.ndarray, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 frames [M, 84, 84] → (latents [M·36, E] float32, their tokens [M·36]), in eval mode."""
    latents, tokens, _ = _encode_sample(tokenizer, frames, chunk, None)
    return latents, tokens


@torch.no_grad()
def _encode_sample(tokenizer: Tokenizer, frames: np.ndarray, chunk: int,
                   pixel_weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(latents, tokens, and with `pixel_weights` [M, 1, 84, 84] each latent's patch error [M·36] float32)."""
    was_training = tokenizer.training
    tokenizer.eval()
    device = tokenizer.embedding.weight.device
    latents, tokens, errors = [], [], []
    for start in range(0, len(frames), chunk):
        x = torch.from_numpy(frames[start:start + chunk]).to(device).float().div(255).unsqueeze(1)
        encoding = tokenizer.encode(x)
        latents.append(flatten_latents(encoding.z).float())
        tokens.append(encoding.tokens.reshape(-1))
        if pixel_weights is not None:
            error = (tokenizer.decode(encoding.z_quantized).float() - x).abs()  # [m, 1, 84, 84]
            error = error * pixel_weights[start:start + chunk].to(device)
            patch = x.shape[-1] // encoding.z.shape[-1]
            errors.append(F.avg_pool2d(error, patch).reshape(-1))  # [m·h·w], row-major like the latents
    tokenizer.train(was_training)
    return torch.cat(latents), torch.cat(tokens), torch.cat(errors) if errors else None


def restart_weights(frames: np.ndarray, by: str, backgrounds: np.ndarray | None = None,
                    foreground_weight: float = 0.0) -> torch.Tensor | None:
    """The pixel weights [M, 1, 84, 84] a `pixels` restart scores patches with (1 + foreground_weight on the
    pixels unlike their game's background, with backgrounds uint8 [G, 84, 84]); None for `latent`."""
    if by not in RESTART_BY:
        raise ValueError(f"code restarts by {by!r}: choose one of {RESTART_BY}")
    if by == "latent":
        return None
    if foreground_weight > 0 and backgrounds is not None:
        return foreground_weights(torch.from_numpy(frames), torch.from_numpy(backgrounds), foreground_weight)
    return torch.ones(len(frames), 1, *frames.shape[1:])


@torch.no_grad()
def restart_dead_codes(tokenizer: Tokenizer, frames: np.ndarray, generator: torch.Generator,
                       pixel_weights: torch.Tensor | None = None) -> int:
    """Move every code unused on `frames` onto a latent of them: by latent distance, or with `pixel_weights`
    (`restart_weights`) at the worst-reconstructed patches (the module's docstring). Returns how many moved."""
    latents, tokens, patch_error = _encode_sample(tokenizer, frames, 256, pixel_weights)
    codebook = tokenizer.embedding.weight
    dead = torch.bincount(tokens, minlength=codebook.shape[0]) == 0  # [K]
    count = int(dead.sum())
    if count and patch_error is not None:
        weights = patch_error.square().cpu()
        weights = weights if int((weights > 0).sum()) >= count else torch.ones_like(weights)
        picks = torch.multinomial(weights, min(count, len(weights)), replacement=False, generator=generator)
        targets = dead.nonzero().squeeze(1)[:len(picks)]
        codebook[targets.to(codebook.device)] = latents[picks.to(latents.device)].to(codebook.dtype)
    elif count:
        misfit = squared_distances(latents, codebook).amin(dim=1).clamp_min(0).cpu()  # [M·36]
        weights = misfit if misfit.sum() > 0 else torch.ones_like(misfit)
        picks = torch.multinomial(weights, count, replacement=True, generator=generator)
        codebook[dead.to(codebook.device)] = latents[picks.to(latents.device)].to(codebook.dtype)
    if dist.is_initialized():  # ranks encode their own samples: rank 0's codebook is everyone's
        dist.broadcast(codebook.data, src=0)
    return count


class DeadCodeRestart:
    """Loop hook (every rank): restart the dead codes every `every` steps, before the step's checkpoint."""

    def __init__(self, tokenizer: Tokenizer, frames: np.ndarray, every: int, seed: int, by: str = "latent",
                 backgrounds: np.ndarray | None = None, foreground_weight: float = 0.0) -> None:
        self.tokenizer, self.frames, self.every, self.seed = tokenizer, frames, every, seed
        self.pixel_weights = restart_weights(frames, by, backgrounds, foreground_weight)  # the sample is fixed
        self.logger: TrainLogger | None = None

    def attach(self, logger: TrainLogger) -> None:
        self.logger = logger

    def after_step(self, step: int) -> None:
        if step % self.every:
            return
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)  # own stream: the loop's is untouched
        moved = restart_dead_codes(self.tokenizer, self.frames, generator, self.pixel_weights)
        if self.logger is not None:
            self.logger.scalars(step, {"codes/restarted": float(moved)})

    def after_resume(self, step: int) -> None:
        pass
