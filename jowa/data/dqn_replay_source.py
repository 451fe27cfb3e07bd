"""DQN-Replay (Dopamine logged replay buffers) as an episode source: `jowa.data.replay` behind the interface.

Runs are the `{Game}/{run}` directories (numeric order), parts are a run's chunk suffixes, and an
episode's `start` is its row in the run's replay stream (padding rows excluded).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from jowa.data.episodes import Episode
from jowa.data.replay import EpisodeSpan, ReadStats, read_run, scan_run
from jowa.data.replay_layout import list_games, list_runs, list_suffixes, replay_log_dir
from jowa.data.source import Want


class DqnReplaySource:
    """`{root}/{Game}/{run}/replay_logs/$store$_*_ckpt.N.gz`; see jowa.data.replay for the reading rules.

    skip_bad: log, count and skip a suffix with a bad file instead of raising; assume_full_chunks: accept
    suffixes without add_count (downloads of the 4 $store$ arrays only)."""

    kind = "dqn-replay"

    def __init__(self, root: str | os.PathLike, skip_bad: bool = False, assume_full_chunks: bool = False) -> None:
        self.root = Path(root)
        self.options = {"skip_bad": skip_bad, "assume_full_chunks": assume_full_chunks}

    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_dir() and any(p.is_dir() for p in path.glob("*/*/replay_logs"))

    def describe(self) -> str:
        return f"{self.kind}:{self.root}"

    def games(self) -> list[str]:
        return list_games(self.root)

    def runs(self, game: str) -> list[str]:
        return list_runs(self.root, game)

    def parts(self, game: str, run: str) -> list[int]:
        return list(list_suffixes(replay_log_dir(self.root, game, run)))

    def scan(self, game: str, run: str, *, stats: ReadStats | None = None) -> Iterator[EpisodeSpan]:
        return scan_run(self.root, game, run, stats=stats, **self.options)

    def read(self, game: str, run: str, *, want: Want | None = None, parts: list[int] | None = None,
             stats: ReadStats | None = None) -> Iterator[Episode]:
        return read_run(self.root, game, run, want=want, suffixes=parts, stats=stats, **self.options)
