"""Stage 1 as a `Stage`: the VQ-VAE tokenizer on frames from the replay (docs/official_jowa.md §2.7–2.8).

Adam (lr 1e-4, default betas, no weight decay), global-norm clipping 1.0, loss = commitment + L1 +
LPIPS. A grid of fixed frames with motion (originals over reconstructions) is written as PNG every
`grid_every` steps and at the end, and shown in TensorBoard; at the same steps the diagnostics of a fixed
sample of consecutive frame pairs (error on foreground and changed pixels beside drawing the background,
code usage; jowa.diagnostics) are logged as `diag/*` scalars.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from jowa.atomic import atomic_file
from jowa.diagnostics import code_usage, motion_order, tokenizer_measures
from jowa.tokenizer import Tokenizer
from jowa.training.batch_source import BatchSource
from jowa.training.config import TokenizerStageConfig
from jowa.training.frames import GameSample
from jowa.training.logger import TrainLogger
from jowa.training.loop import Phase, PhaseParts, Stage
from jowa.training.measure_hook import MeasureHook
from jowa.training.objective_modules import TokenizerObjective
from jowa.training.optim import make_adam

TOKENIZER = "tokenizer"


def grid_image(originals: np.ndarray, reconstructions: np.ndarray, columns: int = 8) -> np.ndarray:
    """uint8 [k, 84, 84] twice → uint8 [H, W] image: rows of originals, each above its reconstructions."""
    k, h, w = originals.shape
    rows = -(-k // columns)
    image = np.full((rows * 2 * (h + 2), columns * (w + 2)), 255, dtype=np.uint8)  # 2-pixel white gutters
    for i in range(k):
        r, c = divmod(i, columns)
        y, x = r * 2 * (h + 2), c * (w + 2)
        image[y:y + h, x:x + w] = originals[i]
        image[y + h + 2:y + 2 * h + 2, x:x + w] = reconstructions[i]
    return image


@torch.no_grad()
def reconstruct(tokenizer: Tokenizer, frames: np.ndarray) -> np.ndarray:
    """uint8 [k, 84, 84] → uint8 [k, 84, 84] through encode → quantize → decode, in eval mode."""
    was_training = tokenizer.training
    tokenizer.eval()
    weight = tokenizer.embedding.weight
    x = torch.from_numpy(frames).to(weight.device, torch.float32).div(255).unsqueeze(1).to(weight.dtype)
    _, _, y = tokenizer(x)  # [k, 1, 84, 84] in [0, 1], unclamped
    tokenizer.train(was_training)
    return (y.float().clamp(0, 1) * 255).round().to(torch.uint8).squeeze(1).cpu().numpy()


class ReconstructionGrid:
    """Hook: PNG + TensorBoard image of fixed frames and their reconstructions (rank 0)."""

    def __init__(self, tokenizer: Tokenizer, frames: np.ndarray, directory: Path, every: int, last: int) -> None:
        self.tokenizer, self.frames, self.directory = tokenizer, frames, directory
        self.every, self.last = every, last
        self.logger: TrainLogger | None = None
        self.written: list[Path] = []

    def attach(self, logger: TrainLogger) -> None:
        self.logger = logger

    def write(self, step: int) -> Path:
        image = grid_image(self.frames, reconstruct(self.tokenizer, self.frames))
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"step_{step:08d}.png"
        import imageio.v3 as iio

        with atomic_file(path) as tmp:
            iio.imwrite(tmp, image, extension=".png")
        if self.logger is not None:
            self.logger.image(step, "reconstructions", np.repeat(image[..., None], 3, axis=-1))
        self.written.append(path)
        return path

    def after_step(self, step: int) -> None:
        if step % self.every == 0 or step == self.last:
            self.write(step)

    def after_resume(self, step: int) -> None:
        pass


def grid_frames(pool: np.ndarray, count: int) -> np.ndarray:
    """`count` frames spread evenly over the pool (no RNG: resuming must not disturb it)."""
    return pool[np.linspace(0, len(pool) - 1, min(count, len(pool))).round().astype(int)]


def motion_frames(samples: dict[str, GameSample], count: int) -> np.ndarray:
    """uint8 [≤count, 84, 84]: the frames t+1 of the pairs that change most, about count / games per game
    (a grid of evenly spaced frames mostly shows still, nearly black screens)."""
    per_game = -(-count // max(1, len(samples)))
    picked = [s.pairs[motion_order(s.pairs[:, 0], s.pairs[:, 1])[:per_game], 1] for s in samples.values()]
    return np.concatenate(picked)[:count] if picked else np.zeros((0, 84, 84), np.uint8)


def diagnostic_sample(samples: dict[str, GameSample]) -> tuple[np.ndarray, np.ndarray]:
    """Every game's pairs → uint8 [P, 2, 84, 84] pairs and [P, 84, 84] the background of each pair's game."""
    pairs = np.concatenate([s.pairs for s in samples.values()])
    backgrounds = np.concatenate([np.broadcast_to(s.background, (len(s.pairs), 84, 84)) for s in samples.values()])
    return pairs, backgrounds


@torch.no_grad()
def measure_tokenizer(tokenizer: Tokenizer, pairs: np.ndarray, backgrounds: np.ndarray) -> dict[str, float]:
    """pairs uint8 [P, 2, 84, 84] (frames t, t+1), backgrounds uint8 [P, 84, 84] → jowa.diagnostics'
    tokenizer measures on the frames t+1 and the code usage over their tokens (eval mode, no RNG)."""
    following = np.ascontiguousarray(pairs[:, 1])
    measures = tokenizer_measures(pairs[:, 0], following, reconstruct(tokenizer, following), backgrounds)
    was_training = tokenizer.training
    tokenizer.eval()
    tokens = tokenizer.encode_tokens(torch.from_numpy(following))  # [P, 36]
    tokenizer.train(was_training)
    return {**measures, **code_usage(tokens.cpu(), tokenizer.config.vocab_size)}


class TokenizerMeasures(MeasureHook):
    """Hook: the diagnostics of a fixed sample of frame pairs every `every` steps and at the end (rank 0)."""

    def __init__(self, tokenizer: Tokenizer, samples: dict[str, GameSample], every: int, last: int) -> None:
        super().__init__(every, last)
        self.tokenizer = tokenizer
        self.pairs, self.backgrounds = diagnostic_sample(samples)

    def compute(self) -> dict[str, float]:
        return measure_tokenizer(self.tokenizer, self.pairs, self.backgrounds)


def tokenizer_stage(
    tokenizer: Tokenizer, config: TokenizerStageConfig, source: BatchSource, micro_batch_size: int,
    backgrounds: np.ndarray | None = None,
) -> Stage:
    """backgrounds: uint8 [G, 84, 84], one per game, needed when config.foreground_weight > 0."""
    tokenizer.perceptual_net()  # read the LPIPS weights now: a missing file fails before training
    if config.foreground_weight > 0 and backgrounds is None:
        raise ValueError("tokenizer.foreground_weight > 0 needs the games' backgrounds (none were sampled)")
    weighting = torch.from_numpy(backgrounds) if config.foreground_weight > 0 else None

    def build() -> PhaseParts:
        objective = TokenizerObjective(tokenizer, weighting, config.foreground_weight, config.motion_weight,
                                       config.pixel_loss)
        return PhaseParts(objective, make_adam(list(tokenizer.parameters()), config.lr))

    return Stage(
        name=TOKENIZER, steps=config.steps, phases=[Phase(TOKENIZER, 0, build)], source=source,
        saved_modules={TOKENIZER: tokenizer}, grad_accum=config.grad_accum, micro_batch_size=micro_batch_size,
        grad_clip=config.grad_clip, items_in=lambda frames: int(frames.shape[0]),
        tokens_per_item=tokenizer.tokens_per_frame,
    )
