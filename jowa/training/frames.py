"""Stage-1 input: a pool of frames sampled from the replay episodes, and batches drawn from it.

The official run took its tokenizer frames from the current world-model batch (uniform over all
transitions, with replacement, black padding frames included — docs/official_jowa.md §2.8). Here the frames of the
replay are reservoir-sampled into a bounded in-memory pool, then batches are drawn uniformly with
replacement from it: the same distribution over real frames, without the padding quirk, and a
memory bound that does not grow with the dataset.

Reading unit = one part of a run of an episode source (game, run, part): a DQN-Replay chunk suffix. Units are shuffled with the seed; with at least
as many units as ranks each rank reads its own units (disjoint frames), otherwise every rank reads
all of them and draws its own random batches. Reading stops after `scan_limit` frames, an equal share
per game.

Beside the pool, each game keeps a small fixed sample for the diagnostics (jowa.diagnostics): consecutive
frame pairs (t, t+1) of one episode, and its background (the per-pixel median of a frame sample). They
are drawn with their own generators, so the pool is the same with or without them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from jowa.data.source import EpisodeSource, open_source
from jowa.diagnostics.pixels import background_frame
from jowa.games import check_game, task_id

DIAGNOSTIC_PAIRS = 64  # consecutive frame pairs kept per game
BACKGROUND_FRAMES = 256  # frames per game whose per-pixel median is its background


@dataclass
class GameSample:
    pairs: np.ndarray  # [P, 2, 84, 84] uint8: frames t and t+1 of one episode
    background: np.ndarray  # [84, 84] uint8


@dataclass
class FramePool:
    frames: np.ndarray  # [N, 84, 84] uint8
    games: tuple[str, ...]
    scanned: int  # frames read to fill the pool
    samples: dict[str, GameSample] = field(default_factory=dict)  # per game read, for the diagnostics
    previous: np.ndarray | None = None  # [N, 84, 84] uint8: each frame's predecessor in its episode (itself first)


@dataclass
class _GameReservoir:
    pairs: np.ndarray  # [P, 84, 84, 2]: the layout of a sliding window over an episode's frames
    frames: np.ndarray  # [F, 84, 84]
    rng: np.random.Generator
    pairs_seen: int = 0
    frames_seen: int = 0

    def add(self, frames: np.ndarray) -> None:
        if len(self.pairs) and len(frames) > 1:  # [n−1, 84, 84, 2] view: only the kept pairs are copied
            window = np.lib.stride_tricks.sliding_window_view(frames, 2, axis=0)
            self.pairs_seen = _reservoir_add(self.pairs, self.pairs_seen, window, self.rng)
        if len(self.frames):
            self.frames_seen = _reservoir_add(self.frames, self.frames_seen, frames, self.rng)

    def sample(self) -> GameSample | None:
        if not (self.pairs_seen and self.frames_seen):
            return None
        pairs = np.moveaxis(self.pairs[:min(self.pairs_seen, len(self.pairs))], -1, 1).copy()
        return GameSample(pairs, background_frame(self.frames[:min(self.frames_seen, len(self.frames))]))


def _game_reservoir(pairs: int, frames: int, seed: int, rank: int, game: str) -> _GameReservoir:
    rng = np.random.default_rng([seed, rank, 13, task_id(game)])  # its own stream: the pool's is untouched
    return _GameReservoir(np.empty((pairs, 84, 84, 2), np.uint8), np.empty((frames, 84, 84), np.uint8), rng)


def source_units(source: EpisodeSource, games: list[str]) -> list[tuple[str, str, int]]:
    return [(game, run, part) for game in games for run in source.runs(game) for part in source.parts(game, run)]


def load_frame_pool(
    replay: EpisodeSource | str | os.PathLike, games: list[str] | None, max_frames: int, scan_limit: int, seed: int,
    rank: int = 0, world_size: int = 1, pairs: int = DIAGNOSTIC_PAIRS, background_frames: int = BACKGROUND_FRAMES,
    previous: bool = False,
) -> FramePool:
    """`replay`: an episode source or its spec (jowa.data.source.open_source). With `previous`, the pool also
    keeps each frame's predecessor (the same reservoir slots: the pooled frames do not change)."""
    source = open_source(replay)
    games = source.games() if games is None else [check_game(g) for g in games]
    if not games:
        raise ValueError(f"No games in the episode source {source.describe()}")
    units = source_units(source, games)
    if not units:
        raise ValueError(f"No episodes in {source.describe()} for {', '.join(games)}")
    order = [units[i] for i in np.random.default_rng([seed, 7]).permutation(len(units))]
    mine = order[rank::world_size] if len(order) >= world_size else order
    rng = np.random.default_rng([seed, rank, 11])
    pool = np.empty((max_frames, 2, 84, 84) if previous else (max_frames, 84, 84), dtype=np.uint8)
    seen = 0
    # Each game gets an equal share of the scan: with few, large chunks (one per run of a small dataset),
    # a global limit would fill the pool from whichever game's chunk came first.
    share = -(-scan_limit // len(games))
    read: dict[str, int] = {}
    diagnostics: dict[str, _GameReservoir] = {}
    for game, run, part in mine:
        if read.get(game, 0) >= share:
            continue
        for episode in source.read(game, run, parts=[part]):
            added = np.stack([episode.frames, _predecessors(episode.frames)], 1) if previous else episode.frames
            seen = _reservoir_add(pool, seen, added, rng)
            read[game] = read.get(game, 0) + len(episode.frames)
            if game not in diagnostics:
                diagnostics[game] = _game_reservoir(pairs, background_frames, seed, rank, game)
            diagnostics[game].add(episode.frames)
            if read[game] >= share:
                break
    if seen == 0:
        raise ValueError(f"No complete episodes in the parts of {source.describe()} ({len(mine)} read)")
    kept = pool[:min(seen, max_frames)]
    return FramePool(kept[:, 0] if previous else kept, tuple(games), seen,
                     {g: x for g, r in diagnostics.items() if (x := r.sample()) is not None},
                     kept[:, 1] if previous else None)


def _predecessors(frames: np.ndarray) -> np.ndarray:
    """[T, 84, 84] → the frame before each one in the episode; the first is its own predecessor."""
    return np.concatenate([frames[:1], frames[:-1]])


def _reservoir_add(pool: np.ndarray, seen: int, frames: np.ndarray, rng: np.random.Generator) -> int:
    """Algorithm R over a chunk of frames: afterwards pool[:min(seen, cap)] is a uniform sample."""
    cap = len(pool)
    fill = max(0, min(cap - seen, len(frames)))
    pool[seen:seen + fill] = frames[:fill]
    rest = frames[fill:]
    if len(rest):
        positions = np.arange(seen + fill, seen + len(frames))
        slots = rng.integers(0, positions + 1)  # frame t replaces slot j < cap with probability cap / (t + 1)
        keep = slots < cap
        pool[slots[keep]] = rest[keep]
    return seen + len(frames)


class FrameBatches:
    """Endless uint8 [B, 84, 84] batches, or [B, 2, 84, 84] (each frame beside its predecessor) when given
    `previous`; batch i of rank r depends on (seed, r, i) only."""

    def __init__(self, frames: np.ndarray, batch_size: int, seed: int, rank: int = 0,
                 previous: np.ndarray | None = None) -> None:
        if len(frames) == 0:
            raise ValueError("FrameBatches needs at least one frame")
        if previous is not None and previous.shape != frames.shape:
            raise ValueError(f"previous frames {previous.shape} do not match the frames {frames.shape}")
        self.frames, self.previous = frames, previous
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.position = 0

    def __iter__(self) -> "FrameBatches":
        return self

    def __next__(self) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, self.rank, self.position])
        self.position += 1
        picks = rng.integers(0, len(self.frames), self.batch_size)
        if self.previous is None:
            return torch.from_numpy(self.frames[picks])
        return torch.from_numpy(np.stack([self.frames[picks], self.previous[picks]], 1))

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "pool_size": len(self.frames)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["pool_size"] != len(self.frames):
            raise ValueError(f"frame pool holds {len(self.frames)} frames, the checkpoint's held {state['pool_size']}; "
                             f"resume with the same replay data and tokenizer.pool_frames")
        self.position = int(state["position"])
