"""A fixed held batch for the world/critic measures: a few whole episodes from the token shards, cut into
consecutive windows of the training segment length, with the observed return-to-go of every step.

Whole episodes (ending in a terminal step when the shards have such) so that returns-to-go are the
returns the data actually saw; the first episodes of each game's shards, in file order, so the batch is
the same at every log point, on resume and across runs over the same shards (no RNG).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from jowa.data.batch import Batch
from jowa.data.segments import SegmentRef, collate
from jowa.data.shards import ShardInfo, TokenEpisode, iter_shard
from jowa.diagnostics.critic import returns_to_go

SCAN_EPISODES = 64  # episodes read per game at most while looking for whole ones that fit


def _by_game(shards: Sequence[ShardInfo]) -> list[list[ShardInfo]]:
    """Shards grouped by the game they hold (one group when the index does not say)."""
    groups: dict[str, list[ShardInfo]] = {}
    for shard in shards:
        groups.setdefault(shard.games[0] if len(shard.games) == 1 else "", []).append(shard)
    return [groups[g] for g in sorted(groups)]


def whole_episodes(shards: Sequence[ShardInfo], max_steps: int) -> list[TokenEpisode]:
    """Terminal episodes, about max_steps / games steps per game: each game's first ones that fit its
    share, in file order; a game with no terminal episode in reach gives its first episode that fits."""
    groups = _by_game(shards)
    share = max(1, max_steps // max(1, len(groups)))
    picked: list[TokenEpisode] = []
    for group in groups:
        taken, left, fallback = [], share, None
        for i, episode in enumerate(e for shard in group for e in iter_shard(shard.url)):
            if i >= SCAN_EPISODES or left <= 0:
                break
            if episode.steps > left:
                continue
            if episode.terminals[-1]:
                taken.append(episode)
                left -= episode.steps
            elif fallback is None:
                fallback = episode
        picked += taken or ([fallback] if fallback is not None else [])
    return picked


def episode_windows(episodes: Sequence[TokenEpisode], length: int, gamma: float) -> tuple[Batch, torch.Tensor]:
    """Episodes → (Batch of their consecutive `length`-step windows, float32 [B, length] returns-to-go,
    0 on padding). Every step of every episode appears exactly once."""
    refs = [SegmentRef(e, s) for e in episodes for s in range(0, e.steps, length)]
    batch = collate(refs, length)
    returns = np.zeros((len(refs), length), dtype=np.float32)
    row = 0
    for episode in episodes:
        g = returns_to_go(episode.rewards, gamma)
        for s in range(0, episode.steps, length):
            part = g[s:s + length]
            returns[row, :len(part)] = part
            row += 1
    return batch, torch.from_numpy(returns)
