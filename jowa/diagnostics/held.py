"""A fixed held batch for the world/critic measures: a few episodes from the token shards, cut into
consecutive windows of the training segment length, with the observed return-to-go of every step.

Episodes that end in a terminal step, whole or their last steps (the return-to-go of a step needs only
the steps after it, so an episode's tail has exact returns; long expert episodes need not fit whole).
The last such episodes of each game's shards in file order: a learning agent's log (DQN-Replay, our
behaviour runs) starts with ε = 1 random play, whose actions no critic can be held against, and ends with
its most competent play. No RNG, so the batch is the same at every log point, on resume and across runs
over the same shards.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from jowa.data.batch import Batch
from jowa.data.segments import SegmentRef, collate
from jowa.data.shards import ShardInfo, TokenEpisode, iter_shard
from jowa.diagnostics.critic import returns_to_go

SCAN_EPISODES = 64  # episodes looked at per game at most (newest first) while looking for ones that end


def _by_game(shards: Sequence[ShardInfo]) -> list[list[ShardInfo]]:
    """Shards grouped by the game they hold (one group when the index does not say)."""
    groups: dict[str, list[ShardInfo]] = {}
    for shard in shards:
        groups.setdefault(shard.games[0] if len(shard.games) == 1 else "", []).append(shard)
    return [groups[g] for g in sorted(groups)]


@dataclass(frozen=True)
class HeldEpisode:
    episode: TokenEpisode
    start: int  # first step taken: 0 for a whole episode, later for its tail


def _newest_first(group: Sequence[ShardInfo]) -> Iterator[TokenEpisode]:
    """A game's episodes from the last one back (one shard read at a time, its episodes reversed)."""
    for shard in reversed(group):
        yield from reversed(list(iter_shard(shard.url)))


def held_episodes(shards: Sequence[ShardInfo], max_steps: int) -> list[HeldEpisode]:
    """About max_steps / games steps per game, in file order: each game's last terminal episodes, whole
    while they fit its share, then the tail of the one before them that fills it. A game with no terminal
    episode in reach gives the tail of its last episode (its returns then miss what came after)."""
    groups = _by_game(shards)
    share = max(1, max_steps // max(1, len(groups)))
    picked: list[HeldEpisode] = []
    for group in groups:
        taken, left, last = [], share, None
        for i, episode in enumerate(_newest_first(group)):
            if i >= SCAN_EPISODES or left <= 0:
                break
            if last is None:
                last = episode
            if episode.terminals[-1]:
                taken.append(HeldEpisode(episode, max(0, episode.steps - left)))
                left -= episode.steps - taken[-1].start
        if not taken and last is not None:
            taken = [HeldEpisode(last, max(0, last.steps - share))]
        picked += taken[::-1]
    return picked


def episode_windows(episodes: Sequence[HeldEpisode], length: int, gamma: float) -> tuple[Batch, torch.Tensor]:
    """Held episodes → (Batch of their consecutive `length`-step windows, float32 [B, length] returns-to-go,
    0 on padding). Every held step appears exactly once."""
    refs = [SegmentRef(h.episode, s) for h in episodes for s in range(h.start, h.episode.steps, length)]
    batch = collate(refs, length)
    returns = np.zeros((len(refs), length), dtype=np.float32)
    row = 0
    for held in episodes:
        g = returns_to_go(held.episode.rewards[held.start:], gamma)
        for s in range(0, len(g), length):
            part = g[s:s + length]
            returns[row, :len(part)] = part
            row += 1
    return batch, torch.from_numpy(returns)
