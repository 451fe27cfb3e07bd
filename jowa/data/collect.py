"""Play games with a policy and log the transitions as DQN-Replay runs (one run per game).

Every game gets `envs_per_game` environments in one vector env (sticky actions 0.25, Dopamine
preprocessing). Each environment's episode is buffered and added to its game's `ReplayWriter` in one
piece when it ends, so the buffer holds whole episodes as Dopamine's single-env runs do (3 padding rows
before each). Stored rewards are clipped to [-1, 1] as Dopamine's runner did; returns are reported raw.

Exactly `transitions` real transitions are logged per game: as soon as an environment's episode in
progress would fill the rest of the game's budget it is cut there and marked terminal, as Dopamine marked
its 27k-step cap (so the data holds at most one such cut per game); the game's other episodes in progress
are discarded.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jowa.data.replay_layout import replay_log_dir
from jowa.data.replay_writer import ReplayWriter
from jowa.envs import Policy, load_policy, make_vector_env, valid_action_masks
from jowa.envs.atari import DOPAMINE_MAX_EPISODE_STEPS
from jowa.games import check_game, full_to_minimal, task_id


@dataclass
class GameStats:
    transitions: int = 0
    episodes: int = 0
    game_overs: int = 0
    step_caps: int = 0  # episodes that hit max_episode_steps (stored terminal, as Dopamine did)
    budget_cuts: int = 0  # the episode cut at the transition budget
    returns: list[float] = field(default_factory=list)  # raw returns of the episodes that ended by game over


@dataclass
class _Buffer:
    frames: list[np.ndarray] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)  # minimal-set index
    rewards: list[float] = field(default_factory=list)  # raw


def collect(
    games: Sequence[str],
    transitions: int,
    out: str | os.PathLike,
    *,
    policy: str | Policy = "random",
    envs_per_game: int = 1,
    run: str = "1",
    capacity: int = 1_000_000,
    sticky: float = 0.25,
    seed: int = 0,
    max_episode_steps: int = DOPAMINE_MAX_EPISODE_STEPS,
    asynchronous: bool | None = None,
    compresslevel: int = 6,
    progress: bool = True,
) -> dict[str, GameStats]:
    """Log `transitions` transitions per game under `{out}/{Game}/{run}/replay_logs`; returns per-game stats."""
    games = [check_game(g) for g in games]
    if len(set(games)) != len(games) or not games:
        raise ValueError(f"games must be distinct and non-empty, got {games}")
    if transitions <= 0 or envs_per_game <= 0:
        raise ValueError("transitions and envs_per_game must be positive")
    for game in games:
        log_dir = replay_log_dir(out, game, run)
        if log_dir.is_dir() and any(log_dir.iterdir()):
            raise FileExistsError(f"{log_dir} already holds replay files; choose another --out or --run")
    act = load_policy(policy, seed) if isinstance(policy, str) else policy
    env_games = [g for g in games for _ in range(envs_per_game)]
    num_envs = len(env_games)
    masks = valid_action_masks(env_games)  # [N, 18]
    tasks = np.array([task_id(g) for g in env_games], dtype=np.int64)
    to_minimal = np.stack([full_to_minimal(g) for g in env_games])  # [N, 18]
    writers = {g: ReplayWriter(replay_log_dir(out, g, run), capacity, compresslevel=compresslevel) for g in games}
    stats = {g: GameStats() for g in games}
    left = {g: transitions for g in games}
    buffers = [_Buffer() for _ in range(num_envs)]
    asynchronous = num_envs > 1 and (os.cpu_count() or 1) > 1 if asynchronous is None else asynchronous

    envs = make_vector_env(env_games, sticky=sticky, max_episode_steps=max_episode_steps, asynchronous=asynchronous)
    bar = tqdm(total=transitions * len(games), unit="tr", disable=not progress, desc="collect")
    started = time.perf_counter()
    try:
        obs, _ = envs.reset(seed=seed)
        starts = np.ones(num_envs, dtype=bool)
        while any(left.values()):
            actions = np.asarray(act(obs, tasks, masks, starts), dtype=np.int64)  # [N] full set
            next_obs, rewards, terminated, truncated, info = envs.step(actions)
            for i, game in enumerate(env_games):
                if not left[game]:
                    continue
                buf = buffers[i]
                buf.frames.append(obs[i])
                buf.actions.append(int(to_minimal[i, actions[i]]))
                buf.rewards.append(float(rewards[i]))
                ended = bool(terminated[i] or truncated[i])
                if ended or len(buf.actions) >= left[game]:
                    _log_episode(writers[game], stats[game], buf)
                    stats[game].game_overs += bool(terminated[i])
                    stats[game].step_caps += bool(truncated[i] and not terminated[i])
                    stats[game].budget_cuts += not ended
                    if terminated[i]:
                        stats[game].returns.append(float(np.sum(buf.rewards)))
                    left[game] -= len(buf.actions)
                    buffers[i] = _Buffer()
                    if not left[game]:  # the game is done: its other episodes in progress are dropped
                        for j, other in enumerate(env_games):
                            if other == game:
                                buffers[j] = _Buffer()
            in_progress = dict.fromkeys(games, 0)
            for i, game in enumerate(env_games):
                in_progress[game] += len(buffers[i].actions)
            bar.update(sum(min(transitions, transitions - left[g] + in_progress[g]) for g in games) - bar.n)
            obs, starts = next_obs, terminated | truncated
    finally:
        envs.close()
    with ThreadPoolExecutor(len(games)) as pool:  # zlib releases the GIL: compress the games' chunks together
        list(pool.map(lambda w: w.log_final(), writers.values()))
    bar.close()
    seconds = time.perf_counter() - started
    for game in games:
        meta = {"policy": policy if isinstance(policy, str) else type(policy).__name__, "sticky": sticky,
                "seed": seed, "envs_per_game": envs_per_game, "capacity": capacity,
                "max_episode_steps": max_episode_steps, "seconds": round(seconds, 2), **asdict(stats[game])}
        path = Path(out) / game / run / "collect.json"
        path.write_text(json.dumps(meta, indent=1))
    return stats


def _log_episode(writer: ReplayWriter, stats: GameStats, buf: _Buffer) -> None:
    n = len(buf.actions)
    terminals = np.zeros(n, dtype=np.uint8)
    terminals[-1] = 1
    rewards = np.clip(np.asarray(buf.rewards, dtype=np.float32), -1.0, 1.0)  # Dopamine clipped before storing
    writer.add_rows(np.stack(buf.frames), np.asarray(buf.actions), rewards, terminals)
    stats.transitions += n
    stats.episodes += 1
