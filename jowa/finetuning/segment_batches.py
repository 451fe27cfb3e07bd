"""Fine-tuning batches: stride-1 segments of the in-memory episodes, epoch after epoch, exactly resumable.

Every optimizer step gets a `FinetuneBatch`:
- `real`: B segments, each epoch a fresh permutation of all segments (the official in-memory dataset
  with a shuffling sampler);
- `seeds`: S segments to imagine from, drawn from their own permutation stream (official: a second
  sampler with seed + 10000) over the segments that can seed imagination — L real steps, the last one
  not terminal (nothing follows a game over);
- `real_frames` / `seed_frames` / `tokenizer_frames`: pixels, only when the tokenizer is fine-tuned
  (the segments are then re-encoded by the current tokenizer every step, and the tokenizer loss reads
  `tokenizer_frames`, drawn uniformly from all the game's frames). Empty tensors otherwise.

Batch k depends only on (seed, k), so `state_dict` is the number of batches consumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from jowa.data.batch import Batch
from jowa.data.segments import SegmentRef, collate
from jowa.finetuning.data import MemoryEpisode

FRAME = (84, 84)


@dataclass
class FinetuneBatch:
    real: Batch  # [B, L] segments
    seeds: Batch  # [S, L] real segments that seed imagination (S = 0 without imagination)
    real_frames: torch.Tensor  # uint8 [B, L, 84, 84] (padded steps black), or [0, L, 84, 84]
    seed_frames: torch.Tensor  # uint8 [S, L, 84, 84], or [0, L, 84, 84]
    tokenizer_frames: torch.Tensor  # uint8 [F, 84, 84], or [0, 84, 84]


class _Permutations:
    """Position p of an endless stream of permutations of `items` (epoch p // n, seeded by (seed, stream, epoch))."""

    def __init__(self, items: np.ndarray, seed: int, stream: int) -> None:
        self.items, self.seed, self.stream = items, seed, stream
        self._epoch, self._order = -1, items

    def take(self, start: int, count: int) -> np.ndarray:
        n = len(self.items)
        out = np.empty(count, dtype=self.items.dtype)
        for i, p in enumerate(range(start, start + count)):
            epoch = p // n
            if epoch != self._epoch:
                self._epoch = epoch
                self._order = self.items[np.random.default_rng([self.seed, self.stream, epoch]).permutation(n)]
            out[i] = self._order[p % n]
        return out


class FinetuneBatches:
    """The `BatchSource` of fine-tuning (see the module docstring)."""

    def __init__(
        self, episodes: list[MemoryEpisode], task: int, batch_size: int, segment_length: int = 8, stride: int = 1,
        seed: int = 0, seed_batch_size: int = 0, seed_offset: int = 10_000, tokenizer_frames: int = 0,
    ) -> None:
        if not episodes:
            raise ValueError("fine-tuning needs at least one episode")
        self.episodes, self.task, self.length = episodes, task, segment_length
        self.batch_size, self.seed_batch_size, self.tokenizer_frames = batch_size, seed_batch_size, tokenizer_frames
        self.with_frames = tokenizer_frames > 0
        if self.with_frames and any(e.frames is None for e in episodes):
            raise ValueError("tokenizer fine-tuning needs the episodes' frames (load them with keep_frames=True)")
        refs = [(i, s) for i, e in enumerate(episodes) for s in range(0, e.steps, stride)]
        self.refs = np.array(refs, dtype=np.int64)  # [N, 2] (episode, start)
        eligible = np.array([k for k, (i, s) in enumerate(refs) if self._can_seed(episodes[i], s)], dtype=np.int64)
        if seed_batch_size and not len(eligible):
            raise ValueError(f"no segment has {segment_length} real steps without a game over at the last one: "
                             f"nothing to imagine from (episodes of {[e.steps for e in episodes][:5]} steps)")
        self.seedable = len(eligible)
        self._real = _Permutations(np.arange(len(refs)), seed, 0)
        self._seeds = _Permutations(eligible, seed + seed_offset, 1)
        self._offsets = np.cumsum([0] + [e.steps for e in episodes])
        self.seed = seed
        self.consumed = 0

    def _can_seed(self, episode: MemoryEpisode, start: int) -> bool:
        stop = start + self.length
        return stop < episode.steps or (stop == episode.steps and not episode.terminals[-1])

    @property
    def num_segments(self) -> int:
        return len(self.refs)

    def __iter__(self) -> "FinetuneBatches":
        return self

    def __next__(self) -> FinetuneBatch:
        k = self.consumed
        real = self.refs[self._real.take(k * self.batch_size, self.batch_size)]
        seeds = self.refs[self._seeds.take(k * self.seed_batch_size, self.seed_batch_size)] \
            if self.seed_batch_size else self.refs[:0]
        batch = FinetuneBatch(
            real=self._collate(real), seeds=self._collate(seeds),
            real_frames=self._segment_frames(real), seed_frames=self._segment_frames(seeds),
            tokenizer_frames=self._sample_frames(k),
        )
        self.consumed += 1
        return batch

    def _collate(self, refs: np.ndarray) -> Batch:
        return collate([SegmentRef(self.episodes[i], int(s)) for i, s in refs], self.length,
                       lambda game: self.task)  # type: ignore[arg-type]

    def _segment_frames(self, refs: np.ndarray) -> torch.Tensor:
        if not self.with_frames:
            return torch.zeros(0, self.length, *FRAME, dtype=torch.uint8)
        out = np.zeros((len(refs), self.length, *FRAME), dtype=np.uint8)
        for row, (i, s) in enumerate(refs):
            frames = self.episodes[i].frames[s:s + self.length]
            out[row, :len(frames)] = frames
        return torch.from_numpy(out)

    def _sample_frames(self, k: int) -> torch.Tensor:
        if not self.with_frames:
            return torch.zeros(0, *FRAME, dtype=torch.uint8)
        picks = np.random.default_rng([self.seed, 2, k]).integers(0, self._offsets[-1], self.tokenizer_frames)
        episode = np.searchsorted(self._offsets, picks, side="right") - 1
        frames = [self.episodes[e].frames[p - self._offsets[e]] for e, p in zip(episode, picks)]
        return torch.from_numpy(np.stack(frames))

    def state_dict(self) -> dict[str, Any]:
        return {"batches": self.consumed, "seed": self.seed, "segments": self.num_segments,
                "batch_size": self.batch_size, "seed_batch_size": self.seed_batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = self.state_dict()
        differ = {k: (state.get(k), v) for k, v in mine.items() if k != "batches" and state.get(k) != v}
        if differ:
            raise ValueError(f"cannot resume the fine-tuning batches: settings differ (checkpoint, now): {differ}")
        self.consumed = int(state["batches"])
