"""Stage-1 input: a pool of frames sampled from the replay episodes, and batches drawn from it.

The official run took its tokenizer frames from the current world-model batch (uniform over all
transitions, with replacement, black padding frames included — docs/official_jowa.md §2.8). Here the frames of the
replay are reservoir-sampled into a bounded in-memory pool, then batches are drawn uniformly with
replacement from it: the same distribution over real frames, without the padding quirk, and a
memory bound that does not grow with the dataset.

Reading unit = one replay chunk (game, run, suffix). Units are shuffled with the seed; with at least
as many units as ranks each rank reads its own units (disjoint frames), otherwise every rank reads
all of them and draws its own random batches. Reading stops after `scan_limit` frames.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jowa.data.replay import list_games, list_runs, list_suffixes, read_run, replay_log_dir
from jowa.games import check_game


@dataclass
class FramePool:
    frames: np.ndarray  # [N, 84, 84] uint8
    games: tuple[str, ...]
    scanned: int  # frames read to fill the pool


def replay_units(replay: Path, games: list[str]) -> list[tuple[str, str, int]]:
    units = []
    for game in games:
        for run in list_runs(replay, game):
            units += [(game, run, suffix) for suffix in list_suffixes(replay_log_dir(replay, game, run))]
    return units


def load_frame_pool(
    replay: str | os.PathLike, games: list[str] | None, max_frames: int, scan_limit: int, seed: int,
    rank: int = 0, world_size: int = 1,
) -> FramePool:
    replay = Path(replay)
    games = list_games(replay) if games is None else [check_game(g) for g in games]
    if not games:
        raise ValueError(f"No game directories under the replay root {replay}")
    units = replay_units(replay, games)
    if not units:
        raise ValueError(f"No replay chunks under {replay} for {', '.join(games)}")
    order = [units[i] for i in np.random.default_rng([seed, 7]).permutation(len(units))]
    mine = order[rank::world_size] if len(order) >= world_size else order
    rng = np.random.default_rng([seed, rank, 11])
    pool = np.empty((max_frames, 84, 84), dtype=np.uint8)
    seen = 0
    for game, run, suffix in mine:
        for episode in read_run(replay, game, run, suffixes=[suffix]):
            seen = _reservoir_add(pool, seen, episode.frames, rng)
            if seen >= scan_limit:
                break
        if seen >= scan_limit:
            break
    if seen == 0:
        raise ValueError(f"No complete episodes in the replay chunks under {replay} ({len(mine)} read)")
    return FramePool(pool[:min(seen, max_frames)], tuple(games), seen)


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
    """Endless uint8 [B, 84, 84] batches; batch i of rank r depends on (seed, r, i) only."""

    def __init__(self, frames: np.ndarray, batch_size: int, seed: int, rank: int = 0) -> None:
        if len(frames) == 0:
            raise ValueError("FrameBatches needs at least one frame")
        self.frames = frames
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.position = 0

    def __iter__(self) -> "FrameBatches":
        return self

    def __next__(self) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, self.rank, self.position])
        self.position += 1
        return torch.from_numpy(self.frames[rng.integers(0, len(self.frames), self.batch_size)])

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "pool_size": len(self.frames)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["pool_size"] != len(self.frames):
            raise ValueError(f"frame pool holds {len(self.frames)} frames, the checkpoint's held {state['pool_size']}; "
                             f"resume with the same replay data and tokenizer.pool_frames")
        self.position = int(state["position"])
