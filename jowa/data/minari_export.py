"""Our episodes as a local Minari dataset, written with `minari`'s own API (no environment is created).

The dataset holds 84×84 gray frames (stored raw, not JPEG: lossless), full-set actions (Discrete(18)),
the rewards as they are (`MinariSource` clips to [-1, 1] on reading, as DQN-Replay's are), and `terminations` = our terminals. Minari wants one observation more than
actions per episode (the one after the last action), which our rows do not have: the last frame is
repeated there, and `MinariSource` drops it again, so export → read gives the episodes back exactly.
"""

from __future__ import annotations

import itertools
import os
import shutil
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from jowa.atomic import atomic_directory
from jowa.data.episodes import Episode
from jowa.games import NUM_ACTIONS, check_game

NAMESPACE_RECORD = "namespace_metadata.json"  # minari's record of a namespace (one per level)


def default_dataset_id(game: str, name: str = "jowa") -> str:
    """Minari's Atari naming, which `MinariSource` reads the game from: atari/<game>/<name>-v0."""
    return f"atari/{check_game(game).lower()}/{name}-v0"


@contextmanager
def _datasets_path(root: Path) -> Iterator[None]:
    """minari writes under $MINARI_DATASETS_PATH: point it at `root` for the call only."""
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = before


def _buffer(episode: Episode) -> object:
    from minari.data_collector.episode_buffer import EpisodeBuffer

    n = len(episode)
    return EpisodeBuffer(observations=np.concatenate([episode.frames, episode.frames[-1:]]),
                         actions=episode.actions.astype(np.int64), rewards=episode.rewards.astype(np.float32),
                         terminations=episode.terminals.astype(bool), truncations=np.zeros(n, bool))


def export_minari(episodes: Iterable[Episode], root: str | os.PathLike, dataset_id: str,
                  description: str | None = None, chunk: int = 64) -> Path:
    """Write `episodes` (one game, at least one step each) as the Minari dataset `dataset_id` under `root`.

    Episodes are added `chunk` at a time (memory stays bounded). Returns the dataset's directory; an
    existing dataset of that id is refused (minari never overwrites)."""
    import gymnasium as gym
    import minari

    root, stream = Path(root), iter(episodes)
    final = root / dataset_id
    if final.exists():
        raise FileExistsError(f"{final} exists: choose another dataset id (Minari datasets are never overwritten)")
    tmp = atomic_directory(root / f"export-{dataset_id.replace('/', '-')}")
    dataset, game = None, None
    try:
        with _datasets_path(tmp), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # minari warns about the fields we leave unset (author, code link, …)
            while batch := list(itertools.islice(stream, chunk)):
                game = _check(batch, dataset_id, game)
                buffers = [_buffer(e) for e in batch]
                if dataset is None:
                    dataset = minari.create_dataset_from_buffers(
                        dataset_id, buffers, observation_space=gym.spaces.Box(0, 255, (84, 84), np.uint8),
                        action_space=gym.spaces.Discrete(NUM_ACTIONS), algorithm_name="jowa export",
                        description=description or f"{game} episodes exported by jowa (84x84 gray, full actions)",
                        jpeg_encoding=False,
                    )
                else:
                    dataset.update_dataset_from_buffer(buffers)
        if dataset is None:
            raise ValueError(f"{dataset_id}: no episodes to export")
        _publish(tmp, root, dataset_id)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _publish(tmp: Path, root: Path, dataset_id: str) -> None:
    """Move the finished dataset into `root`, with the namespace records minari keeps beside it."""
    parts = dataset_id.split("/")
    for depth in range(1, len(parts)):
        record = Path(*parts[:depth]) / NAMESPACE_RECORD
        if (tmp / record).is_file() and not (root / record).is_file():
            (root / record).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(tmp / record, root / record)
    (root / dataset_id).parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp / dataset_id, root / dataset_id)


def _check(batch: list[Episode], dataset_id: str, game: str | None) -> str:
    games = sorted({e.game for e in batch} | ({game} if game else set()))
    if len(games) != 1:
        raise ValueError(f"{dataset_id}: a Minari dataset holds one game, got {games}")
    empty = [e.key for e in batch if len(e) == 0]
    if empty:
        raise ValueError(f"{dataset_id}: episodes without steps {empty[:3]}")
    return games[0]
