"""Training segments from token shards: L-step windows, shuffled, mixed across games, split across ranks
and DataLoader workers, batched as `Batch` (docs/official_jowa.md §1.5).

Segments. An episode of n steps yields segments starting at 0, stride, 2·stride, … < n (stride 4 for
pretraining, 1 for fine-tuning); each covers steps s..s+L-1, right-padded past the episode's end with
token 0, action 0, reward 0, end 0 and mask False. `ends` is the terminal flag clipped to {0, 1}.

Splitting. The worker slots are rank × DataLoader worker. Every epoch the shard list is permuted with
(seed, epoch); with at least as many shards as slots, slot i reads shards i, i+slots, … (disjoint files).
With fewer shards, every slot reads every shard in the same order and keeps segment j when
(j + epoch) % slots == i (disjoint segments; each slot decodes what it keeps, so prefer ≥ slots shards).
A slot reads `interleave` shards at a time, taking each next episode from a random one of them, and
feeds a shuffle buffer of segment references; episodes are decoded only when a segment is batched.

Mixing. "uniform": one stream over all shards, so each epoch visits every segment once (the official
DistributedSampler is uniform over segments). "balanced": one stream per game (shards must hold one
game each, as `tokenize_replay` writes them) and each segment's game is drawn uniformly.

Determinism and resuming. Everything is seeded from (seed, epoch, slot), so the stream is a function of
the seed and the split. The DataLoader hands out worker w's batches at positions w, w+W, …, so a run that
consumed `b` batches resumes with `start_batch=b` (see `state_dict`): each worker takes over the stream
whose turn is next and skips its consumed segments without decoding them; the resumed batches are exactly
those the uninterrupted run would have produced. It needs the same seed, batch size, workers and world size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from jowa.data.batch import Batch
from jowa.data.shards import TOKENS_PER_FRAME, ShardInfo, TokenEpisode, iter_shard, resolve_shards, verify_shards
from jowa.games import check_game, task_id

MIXING = ("uniform", "balanced")


@dataclass(frozen=True)
class SegmentRef:
    episode: TokenEpisode
    start: int


def collate(segments: Sequence[SegmentRef], length: int, task_of: Callable[[str], int] = task_id) -> Batch:
    """B segment references → Batch of [B, length] steps (right-padded, mask True on real steps)."""
    b = len(segments)
    observations = np.zeros((b, length, TOKENS_PER_FRAME), dtype=np.int64)
    actions = np.zeros((b, length), dtype=np.int64)
    rewards = np.zeros((b, length), dtype=np.float32)
    ends = np.zeros((b, length), dtype=np.int64)
    mask = np.zeros((b, length), dtype=bool)
    tasks = np.empty(b, dtype=np.int64)
    for i, ref in enumerate(segments):
        e, s = ref.episode, ref.start
        m = min(length, e.steps - s)
        observations[i, :m] = e.tokens[s:s + m]
        actions[i, :m] = e.actions[s:s + m]
        rewards[i, :m] = e.rewards[s:s + m]
        ends[i, :m] = np.minimum(e.terminals[s:s + m], 1)
        mask[i, :m] = True
        tasks[i] = task_of(e.game)
    return Batch(
        observations=torch.from_numpy(observations), actions=torch.from_numpy(actions),
        rewards=torch.from_numpy(rewards), ends=torch.from_numpy(ends), mask_padding=torch.from_numpy(mask),
        tasks=torch.from_numpy(tasks),
    )


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


def _default_rank() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class SegmentDataset(IterableDataset):
    """Infinite (or `epochs`-long) stream of `Batch`es; use with DataLoader(batch_size=None), see make_loader."""

    def __init__(
        self,
        source: str | os.PathLike | Sequence[str],
        *,
        batch_size: int,
        segment_length: int = 8,
        stride: int = 4,
        mixing: str = "uniform",
        shuffle_buffer: int = 10_000,
        interleave: int = 4,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        task_remap: Mapping[str, str] | None = None,
        epochs: int | None = None,
        start_batch: int = 0,
    ):
        """source: index.json, a directory holding one, a shard pattern/URL or a list of URLs.
        task_remap: game → game whose task row it uses (e.g. jowa.games.OFFICIAL_BORROWED_TASK_ROWS)."""
        super().__init__()
        if mixing not in MIXING:
            raise ValueError(f"mixing must be one of {MIXING}, got {mixing!r}")
        if min(batch_size, segment_length, stride, shuffle_buffer, interleave) < 1:
            raise ValueError("batch_size, segment_length, stride, shuffle_buffer and interleave must be positive")
        self.shards = resolve_shards(source)
        if not self.shards:
            raise ValueError(f"No token shards in {source}")
        verify_shards(self.shards)  # sizes against the index: a truncated shard fails now, not hours in
        self.batch_size, self.segment_length, self.stride = batch_size, segment_length, stride
        self.mixing, self.shuffle_buffer, self.interleave, self.seed = mixing, shuffle_buffer, interleave, seed
        default_rank, default_world = _default_rank()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in 0..{self.world_size - 1}")
        remap = {check_game(k): check_game(v) for k, v in (task_remap or {}).items()}
        self._tasks = {g: task_id(remap.get(g, g)) for g in remap}
        self.epochs, self.start_batch = epochs, start_batch
        if mixing == "balanced":
            unknown = [s.url for s in self.shards if len(s.games) != 1]
            if unknown:
                raise ValueError(f"balanced mixing needs an index with one game per shard; not so for {unknown[:3]}")
            self.games = sorted({s.games[0] for s in self.shards}, key=task_id)
        else:
            self.games = []

    # --- the per-slot stream ---

    def task_of(self, game: str) -> int:
        return self._tasks[game] if game in self._tasks else task_id(game)

    def _sources(self) -> list[list[ShardInfo]]:
        if self.mixing == "uniform":
            return [self.shards]
        return [[s for s in self.shards if s.games[0] == g] for g in self.games]

    def _segment_stream(self, shards: list[ShardInfo], source: int, slot: int, slots: int) -> Iterator[SegmentRef]:
        """Segments of this slot's share of `shards`, epoch after epoch, in reading order."""
        epoch = 0
        while self.epochs is None or epoch < self.epochs:
            order = _rng(self.seed, epoch, source).permutation(len(shards))
            by_file = len(shards) >= slots
            mine = [shards[i] for i in (order[slot::slots] if by_file else order)]
            # Split by segment: every slot must enumerate the same sequence, so no slot in the seed.
            pick = _rng(self.seed, epoch, source, slot + 1 if by_file else 0)
            counter = 0
            for episode in self._interleaved(mine, pick):
                starts = range(0, episode.steps, self.stride)
                if by_file:
                    for s in starts:
                        yield SegmentRef(episode, s)
                else:
                    first = (slot - epoch - counter) % slots  # keep j with (j + epoch) % slots == slot
                    for s in starts[first::slots]:
                        yield SegmentRef(episode, s)
                    counter += len(starts)
            epoch += 1

    def _interleaved(self, shards: list[ShardInfo], rng: np.random.Generator) -> Iterator[TokenEpisode]:
        pending = list(shards)
        open_: list[Iterator[TokenEpisode]] = []
        while pending or open_:
            while pending and len(open_) < self.interleave:
                open_.append(iter_shard(pending.pop(0).url))
            i = int(rng.integers(len(open_)))
            try:
                yield next(open_[i])
            except StopIteration:
                open_.pop(i)

    def _shuffled(self, stream: Iterator[SegmentRef], rng: np.random.Generator) -> Iterator[SegmentRef]:
        pool: list[SegmentRef] = []
        for ref in stream:
            pool.append(ref)
            if len(pool) >= self.shuffle_buffer:
                i = int(rng.integers(len(pool)))
                pool[i], pool[-1] = pool[-1], pool[i]
                yield pool.pop()
        order = rng.permutation(len(pool))
        for i in order:
            yield pool[i]

    def segments(self, slot: int, slots: int) -> Iterator[SegmentRef]:
        """The mixed, shuffled segment stream of one slot (rank·workers + worker of slots)."""
        pools = [self._shuffled(self._segment_stream(shards, k, slot, slots), _rng(self.seed, slot, k, 1))
                 for k, shards in enumerate(self._sources())]
        if len(pools) == 1:
            yield from pools[0]
            return
        mix = _rng(self.seed, slot, 2)
        while pools:  # balanced: a uniformly drawn game per segment (finite epochs: until all run out)
            k = int(mix.integers(len(pools)))
            try:
                yield next(pools[k])
            except StopIteration:
                pools.pop(k)

    # --- batches ---

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        # The loader's batch k comes from worker k % workers. After start_batch batches, batch k of the new
        # loader is batch start_batch + k of the old one: this worker takes over that worker's stream.
        role = (worker + self.start_batch) % workers
        slot, slots = self.rank * workers + role, self.world_size * workers
        stream = self.segments(slot, slots)
        skip = len(range(role, self.start_batch, workers)) * self.batch_size  # that stream's consumed share
        for _ in zip(range(skip), stream):
            pass
        while True:
            refs = [ref for _, ref in zip(range(self.batch_size), stream)]
            if not refs:
                return
            yield collate(refs, self.segment_length, self.task_of)

    def state_dict(self, batches_consumed: int, num_workers: int) -> dict[str, Any]:
        """What a restart needs to continue after `batches_consumed` batches from this rank's loader."""
        return {"seed": self.seed, "batches": batches_consumed, "batch_size": self.batch_size,
                "num_workers": num_workers, "world_size": self.world_size, "mixing": self.mixing,
                "stride": self.stride, "segment_length": self.segment_length}

    def load_state_dict(self, state: Mapping[str, Any], num_workers: int) -> None:
        mine = self.state_dict(state["batches"], num_workers)
        differ = {k: (state[k], mine[k]) for k in mine if k != "batches" and state.get(k) != mine[k]}
        if differ:
            raise ValueError(f"Cannot resume the data stream: settings differ (saved, now): {differ}")
        self.start_batch = int(state["batches"])


def make_loader(dataset: SegmentDataset, num_workers: int = 2, pin_memory: bool = False) -> DataLoader:
    """A DataLoader over a SegmentDataset (batches are built in the workers, in order)."""
    return DataLoader(dataset, batch_size=None, num_workers=num_workers, pin_memory=pin_memory,
                      persistent_workers=num_workers > 0, prefetch_factor=4 if num_workers > 0 else None)
