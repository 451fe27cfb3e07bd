"""Dead-code restarts for the VQ codebook (ours, not official: `tokenizer.code_restart_every`, 0 = off).

The official codebook starts at uniform(−1/K, 1/K), tiny next to the encoder's latents, and has no EMA
and no restarts (docs/official_jowa.md §2.3). With few steps only a handful of codes ever win the
nearest-code search (measured: 8 of 512 for `tiny` after 200 steps) and the other codes never move,
so nothing is left to describe a ball or a shot. Every `every` steps this hook encodes a fixed frame
sample, and moves each code that no latent of the sample chose onto a latent of the sample (the usual
restart, e.g. Dhariwal et al. 2020, "Jukebox"), drawn with probability ∝ its squared distance to its
nearest code as in k-means++: the latents the codebook describes worst are the objects, not the
background. It is a function of the weights, the sample and the step only, so a resumed run restarts
exactly as a straight one did.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist

from jowa.tokenizer import Tokenizer
from jowa.tokenizer.quantizer import flatten_latents, squared_distances
from jowa.training.logger import TrainLogger


@torch.no_grad()
def sample_latents(tokenizer: Tokenizer, frames: np.ndarray, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 frames [M, 84, 84] → (latents [M·36, E] float32, their tokens [M·36]), in eval mode."""
    was_training = tokenizer.training
    tokenizer.eval()
    device = tokenizer.embedding.weight.device
    latents, tokens = [], []
    for start in range(0, len(frames), chunk):
        x = torch.from_numpy(frames[start:start + chunk]).to(device).float().div(255).unsqueeze(1)
        encoding = tokenizer.encode(x)
        latents.append(flatten_latents(encoding.z).float())
        tokens.append(encoding.tokens.reshape(-1))
    tokenizer.train(was_training)
    return torch.cat(latents), torch.cat(tokens)


@torch.no_grad()
def restart_dead_codes(tokenizer: Tokenizer, frames: np.ndarray, generator: torch.Generator) -> int:
    """Move every code unused on `frames` onto a random latent of them; returns how many moved."""
    latents, tokens = sample_latents(tokenizer, frames)
    codebook = tokenizer.embedding.weight
    dead = torch.bincount(tokens, minlength=codebook.shape[0]) == 0  # [K]
    count = int(dead.sum())
    if count:
        misfit = squared_distances(latents, codebook).amin(dim=1).clamp_min(0).cpu()  # [M·36]
        weights = misfit if misfit.sum() > 0 else torch.ones_like(misfit)
        picks = torch.multinomial(weights, count, replacement=True, generator=generator)
        codebook[dead.to(codebook.device)] = latents[picks.to(latents.device)].to(codebook.dtype)
    if dist.is_initialized():  # ranks encode their own samples: rank 0's codebook is everyone's
        dist.broadcast(codebook.data, src=0)
    return count


class DeadCodeRestart:
    """Loop hook (every rank): restart the dead codes every `every` steps, before the step's checkpoint."""

    def __init__(self, tokenizer: Tokenizer, frames: np.ndarray, every: int, seed: int) -> None:
        self.tokenizer, self.frames, self.every, self.seed = tokenizer, frames, every, seed
        self.logger: TrainLogger | None = None

    def attach(self, logger: TrainLogger) -> None:
        self.logger = logger

    def after_step(self, step: int) -> None:
        if step % self.every:
            return
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)  # own stream: the loop's is untouched
        moved = restart_dead_codes(self.tokenizer, self.frames, generator)
        if self.logger is not None:
            self.logger.scalars(step, {"codes/restarted": float(moved)})

    def after_resume(self, step: int) -> None:
        pass
