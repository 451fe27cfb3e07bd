"""Synthetic token segments with learnable structure, for tests and throughput measurements.

Batch `i` of rank `r` is a pure function of (seed, r, i), so the source state is one integer and
every rank reads different data. Observation tokens follow a per-task random walk over a small
vocabulary, the action picks the next step's drift, rewards are the sign of the drift and episodes
end with a small probability: a world model can learn all of it, so its losses fall.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from jowa.data.batch import Batch


class SyntheticSegments:
    def __init__(
        self, batch_size: int, vocab_size: int, segment_length: int = 8, tokens_per_obs: int = 36,
        tasks: tuple[int, ...] = (3, 6), seed: int = 0, rank: int = 0,
    ) -> None:
        self.batch_size = batch_size
        self.vocab_size = vocab_size
        self.length = segment_length
        self.tokens = tokens_per_obs
        self.tasks = np.asarray(tasks, dtype=np.int64)
        self.seed = seed
        self.rank = rank
        self.position = 0

    def __iter__(self) -> "SyntheticSegments":
        return self

    def __next__(self) -> Batch:
        rng = np.random.default_rng([self.seed, self.rank, self.position])
        self.position += 1
        b, t, k = self.batch_size, self.length, self.tokens
        actions = rng.integers(0, 18, (b, t))
        drift = (actions % 3) - 1  # [B, T] in {-1, 0, 1}
        start = rng.integers(0, self.vocab_size, (b, 1, 1))
        offsets = np.arange(k)[None, None, :]  # a frame is a ramp of tokens …
        walk = np.cumsum(np.concatenate([np.zeros((b, 1)), drift[:, :-1]], axis=1), axis=1)[..., None]
        observations = (start + offsets + 3 * walk).astype(np.int64) % self.vocab_size  # … shifted by the actions
        lengths = np.where(rng.random(b) < 0.2, rng.integers(1, t + 1, b), t)  # some rows end early
        mask = np.arange(t)[None, :] < lengths[:, None]
        ends = np.zeros((b, t), dtype=np.int64)
        early = lengths < t
        ends[early, lengths[early] - 1] = 1
        batch = Batch(
            observations=torch.from_numpy(np.where(mask[..., None], observations, 0)),
            actions=torch.from_numpy(np.where(mask, actions, 0)),
            rewards=torch.from_numpy(np.where(mask, drift, 0).astype(np.float32)),
            ends=torch.from_numpy(ends),
            mask_padding=torch.from_numpy(mask),
            tasks=torch.from_numpy(rng.choice(self.tasks, b)),
        )
        return batch

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = int(state["position"])
