"""Many Atari envs, possibly of different games, stepped together (gymnasium's vector API).

Every sub-env is `make_env(game)`, so all share the spaces u8[84, 84] / Discrete(18) whatever the game.
Auto-reset is SAME_STEP: when a sub-env's episode ends, `step` returns the first observation of its
next episode (the final one is in `info["final_obs"]`), so the returned observation is always the one to
act on next. `reset(seed=s)` seeds sub-env i with s + i.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from jowa.envs.atari import DOPAMINE_MAX_EPISODE_STEPS, make_env
from jowa.games import action_masks, check_game, task_id


def make_vector_env(
    games: Sequence[str],
    *,
    sticky: float = 0.25,
    max_episode_steps: int | None = DOPAMINE_MAX_EPISODE_STEPS,
    asynchronous: bool = False,
) -> VectorEnv:
    """One sub-env per entry of `games` (repeat a game for several copies). Asynchronous = one process each."""
    games = [check_game(g) for g in games]
    if not games:
        raise ValueError("make_vector_env needs at least one game")
    fns = [partial(make_env, g, sticky=sticky, max_episode_steps=max_episode_steps) for g in games]
    if asynchronous:
        return AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)


def valid_action_masks(games: Sequence[str]) -> np.ndarray:
    """[N, 18] bool: the full actions valid in each sub-env's game (the official mask table)."""
    table = action_masks().numpy()  # [60, 18]
    return table[[task_id(g) for g in games]]
