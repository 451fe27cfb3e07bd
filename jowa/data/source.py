"""Episode sources: where pretraining and fine-tuning read whole episodes from.

A source holds games; each game holds runs (independent streams of play, in a fixed order); each run holds
whole episodes, each with a stable identity (game, run, start), `start` being the row of its first step
in the run's stream. Every consumer (the tokenizer's frame pool, tokenization into shards, JOWA's
subsample, fine-tuning's few transitions) goes through this interface, so a dataset format is one class:

- `games()`: the catalogue games present, in task-id order;
- `runs(game)`: the game's runs, in order;
- `parts(game, run)`: the run's reading units (DQN-Replay: its chunk suffixes), for readers that spread
  units over ranks or shuffle them;
- `scan(game, run)`: every complete episode as an `EpisodeSpan` (no frames read);
- `read(game, run, want=..., parts=...)`: the complete episodes as `Episode`s (frames u8[n, 84, 84],
  full-set actions, rewards, terminals); `want(run, start)` declines episodes before their frames are read,
  which is what makes a resumed pass cheap.

Implementations register in `KINDS`; `open_source` picks one from an explicit `kind:path` or by the
directory's layout (DQN-Replay when nothing else matches).
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from jowa.data.episodes import Episode
from jowa.data.replay import EpisodeSpan, ReadStats

SOURCE_HELP = ("episode source: a DQN-Replay root ({Game}/{run}/replay_logs), a directory of local Minari "
               "datasets, or kind:path (dqn-replay:, minari:)")
Want = Callable[[str, int], bool]  # (run, start) → read this episode's frames?


@runtime_checkable
class EpisodeSource(Protocol):
    kind: str  # its key in KINDS
    root: Path

    def describe(self) -> str:
        """`kind:path`, as run records and shard indexes store it (and `open_source` reads it back)."""
        ...

    def games(self) -> list[str]: ...

    def runs(self, game: str) -> list[str]: ...

    def parts(self, game: str, run: str) -> list[int]: ...

    def scan(self, game: str, run: str, *, stats: ReadStats | None = None) -> Iterator[EpisodeSpan]: ...

    def read(self, game: str, run: str, *, want: Want | None = None, parts: list[int] | None = None,
             stats: ReadStats | None = None) -> Iterator[Episode]: ...


# kind → "module:class"; the class has `detect(path) -> bool` and takes (path, **options).
KINDS: dict[str, str] = {
    "minari": "jowa.data.minari_source:MinariSource",
    "dqn-replay": "jowa.data.dqn_replay_source:DqnReplaySource",  # last: the default layout
}


def source_class(kind: str) -> type:
    if kind not in KINDS:
        raise ValueError(f"unknown episode source kind {kind!r}: choose {', '.join(KINDS)}")
    module, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def open_source(spec: EpisodeSource | str | os.PathLike, **options) -> EpisodeSource:
    """A source from itself, `kind:path` (e.g. `minari:data/minari`), or a directory whose layout says its kind.

    `options` go to the implementation (DQN-Replay: skip_bad, assume_full_chunks); those left off (False,
    None) are not passed, so a flag only one format knows fails only when it is set for another."""
    if isinstance(spec, EpisodeSource):
        return spec
    text = os.fspath(spec)
    kind, sep, rest = text.partition(":")
    if not (sep and kind in KINDS):
        path = Path(text)
        kind = next((k for k in KINDS if source_class(k).detect(path)), "dqn-replay")
        rest = text
    cls = source_class(kind)
    given = {k: v for k, v in options.items() if v}
    unknown = sorted(set(given) - set(inspect.signature(cls).parameters))
    if unknown:
        raise ValueError(f"{kind} source {rest}: {', '.join(unknown)} does not apply to this format")
    return cls(Path(rest), **given)
