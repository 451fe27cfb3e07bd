"""Minari (Farama's offline-RL dataset format) as an episode source: local Atari datasets, read with `minari`.

`root` is one dataset directory (`.../<id>/data/metadata.json` beneath it) or a directory holding several,
e.g. a `MINARI_DATASETS_PATH`. Nothing is downloaded. Each dataset is one run of one game; the run is
named by the dataset id with "/" → "-" (`atari/pong/expert-v0` → `atari-pong-expert-v0`), and an
episode's `start` is its first step's row in the dataset (the steps of the episodes before it).

The game comes from the dataset's environment (`ALE/Pong-v5`) or, without one, from its id (Minari's
Atari namespace names the game: `atari/<game>/<name>-vN`). Conversions to our episodes:
- frames: gray 84×84 as they are; a trailing channel of 1 dropped; a frame stack [k, 84, 84] gives its
  newest frame; ALE screens (210×160 RGB or gray) go to gray and are resized to 84×84 with area
  interpolation (Dopamine's preprocessing, without its max over the last two raw frames, which a stored
  screen no longer has). Minari's final observation (after the last action) has no row and is dropped.
- actions: full-set indices as they are when the action space has 18 actions, else the game's minimal
  set mapped to the full one.
- rewards: clipped to [-1, 1] as DQN-Replay logged them (the C51 support assumes it); `clip_rewards=False`
  keeps them raw.
- terminals: 1 at the last step when the episode terminated or was truncated (DQN-Replay marks its
  27k-step cap terminal too).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from jowa.data.episodes import Episode
from jowa.data.replay import EpisodeSpan, ReadStats
from jowa.data.replay_layout import run_order
from jowa.data.source import Want
from jowa.games import GAME_NAMES, NUM_ACTIONS, check_game, minimal_to_full

METADATA = "metadata.json"
PART_EPISODES = 64  # episodes per reading unit (the frame pool shuffles units)
_NORMALISED = {re.sub(r"[^a-z0-9]", "", name.lower()): name for name in GAME_NAMES}


def _normalise(name: str) -> str:
    name = re.sub(r"-v\d+$", "", name.split("/")[-1])
    return re.sub(r"[^a-z0-9]", "", name.lower().removesuffix("noframeskip"))


def game_of(dataset_id: str, env_id: str | None) -> str:
    """The catalogue game a dataset holds, from its environment id, else from the parts of its id."""
    for candidate in ([env_id] if env_id else []) + dataset_id.split("/"):
        if _normalise(candidate) in _NORMALISED:
            return _NORMALISED[_normalise(candidate)]
    raise ValueError(f"Minari dataset {dataset_id!r}: no Atari game in its environment ({env_id}) or id "
                     f"(name it atari/<game>/<name>-v0)")


def to_frames(observations: np.ndarray, where: str) -> np.ndarray:
    """Observations [n, …] → uint8 [n, 84, 84] (see the module docstring)."""
    obs = np.asarray(observations)
    if obs.dtype != np.uint8:
        raise ValueError(f"{where}: observations are {obs.dtype}, expected uint8 Atari frames")
    if obs.ndim == 4 and obs.shape[-1] == 1:
        obs = obs[..., 0]
    if obs.ndim == 4 and obs.shape[2:] == (84, 84):
        obs = obs[:, -1]
    if obs.shape[1:] == (84, 84):
        return np.ascontiguousarray(obs)
    if obs.shape[1:3] == (210, 160):
        import cv2

        gray = obs if obs.ndim == 3 else np.stack([cv2.cvtColor(o, cv2.COLOR_RGB2GRAY) for o in obs])
        return np.stack([cv2.resize(g, (84, 84), interpolation=cv2.INTER_AREA) for g in gray])
    raise ValueError(f"{where}: observations of shape {obs.shape[1:]} are not Atari frames "
                     f"(84×84 gray, a stack of them, or 210×160 screens)")


class _Dataset:
    """One local Minari dataset: its id, game, action mapping and episode lengths (no frames read)."""

    def __init__(self, data_dir: Path) -> None:
        import minari

        self.data = minari.MinariDataset(data_dir)
        self.id = self.data.id
        self.run = self.id.replace("/", "-")
        spec = self.data.env_spec
        self.game = game_of(self.id, spec.id if spec is not None else None)
        actions = self.data.action_space
        if not hasattr(actions, "n"):
            raise ValueError(f"Minari dataset {self.id}: a {type(actions).__name__} action space; Atari is Discrete")
        full = int(actions.n) == NUM_ACTIONS
        if not full and int(actions.n) != len(minimal_to_full(self.game)):
            raise ValueError(f"Minari dataset {self.id}: {actions.n} actions, neither the full 18 nor "
                             f"{self.game}'s minimal {len(minimal_to_full(self.game))}")
        self.to_full = np.arange(NUM_ACTIONS) if full else np.asarray(minimal_to_full(self.game), dtype=np.int64)

    @cached_property
    def lengths(self) -> np.ndarray:
        indices = [int(i) for i in self.data.episode_indices]
        return np.asarray([int(m["total_steps"]) for m in self.data.storage.get_episode_metadata(indices)], np.int64)

    @cached_property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)

    def episode(self, position: int, data: Any, clip_rewards: bool) -> Episode:
        n = int(self.lengths[position])
        where = f"Minari dataset {self.id} episode {data.id}"
        frames = to_frames(np.asarray(data.observations)[:n], where)
        rewards = np.asarray(data.rewards, dtype=np.float32)[:n]
        terminals = np.zeros(n, np.uint8)
        terminals[-1:] = bool(np.asarray(data.terminations)[-1] or np.asarray(data.truncations)[-1])
        return Episode(frames, self.to_full[np.asarray(data.actions, dtype=np.int64)[:n]],
                       np.clip(rewards, -1, 1) if clip_rewards else rewards, terminals, self.game, self.run,
                       int(self.starts[position]))


class MinariSource:
    kind = "minari"

    def __init__(self, root: str | os.PathLike, clip_rewards: bool = True) -> None:
        self.root = Path(root)
        self.clip_rewards = clip_rewards
        if not self.root.is_dir():
            raise FileNotFoundError(f"Minari dataset directory {self.root} does not exist")

    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_dir() and next(_data_dirs(path), None) is not None

    def describe(self) -> str:
        return f"{self.kind}:{self.root}"

    @cached_property
    def _datasets(self) -> dict[str, dict[str, _Dataset]]:
        """game → run → dataset, games in task-id order, runs in run order."""
        found: dict[str, dict[str, _Dataset]] = {}
        for data_dir in _data_dirs(self.root):
            dataset = _Dataset(data_dir)
            runs = found.setdefault(dataset.game, {})
            if dataset.run in runs:
                raise ValueError(f"{self.root}: two Minari datasets with the id {dataset.id}")
            runs[dataset.run] = dataset
        return {g: dict(sorted(found[g].items(), key=lambda kv: run_order(kv[0]))) for g in GAME_NAMES if g in found}

    def _dataset(self, game: str, run: str) -> _Dataset:
        runs = self._datasets.get(check_game(game), {})
        if run not in runs:
            raise FileNotFoundError(f"{self.root}: no Minari dataset of {game} named {run} (has {list(runs)})")
        return runs[run]

    def games(self) -> list[str]:
        return list(self._datasets)

    def runs(self, game: str) -> list[str]:
        if check_game(game) not in self._datasets:
            raise FileNotFoundError(f"No Minari dataset of {game} under {self.root}")
        return list(self._datasets[game])

    def parts(self, game: str, run: str) -> list[int]:
        return list(range(-(-len(self._dataset(game, run).lengths) // PART_EPISODES)))

    def scan(self, game: str, run: str, *, stats: ReadStats | None = None) -> Iterator[EpisodeSpan]:
        dataset = self._dataset(game, run)
        for start, length in zip(dataset.starts.tolist(), dataset.lengths.tolist()):
            yield EpisodeSpan(dataset.game, run, start, length)

    def read(self, game: str, run: str, *, want: Want | None = None, parts: list[int] | None = None,
             stats: ReadStats | None = None) -> Iterator[Episode]:
        dataset, stats = self._dataset(game, run), stats or ReadStats()
        positions = range(len(dataset.lengths)) if parts is None else [
            i for p in parts for i in range(p * PART_EPISODES, min((p + 1) * PART_EPISODES, len(dataset.lengths)))]
        chosen = [i for i in positions if want is None or want(run, int(dataset.starts[i]))]
        stats.not_wanted += len(positions) - len(chosen)
        indices = [int(dataset.data.episode_indices[i]) for i in chosen]
        for position, data in zip(chosen, dataset.data.iterate_episodes(indices)):
            episode = dataset.episode(position, data, self.clip_rewards)
            stats.episodes += 1
            stats.transitions += len(episode)
            yield episode


def _data_dirs(root: Path) -> Iterator[Path]:
    """Every Minari dataset's `data/` directory at or below `root` (ids are at most namespace/env/name,
    so at most 3 levels down), in path order."""
    for depth in range(4):
        for path in sorted(root.glob("/".join(["*"] * depth + ["data", METADATA]))):
            hidden = any(part.startswith(".") for part in path.relative_to(root).parts)  # e.g. an unfinished export
            if not hidden and "dataset_id" in json.loads(path.read_text()):
                yield path.parent
