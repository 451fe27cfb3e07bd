"""JOWA's subsampling of DQN-Replay (docs/official_jowa.md §1.3): a few runs per game, ~N transitions of whole episodes.

1. Per game, in the order given, pick `runs_per_game` runs without replacement with numpy's legacy RNG
   seeded once (seed 0 and the 15 pretraining games in catalogue order give the official runs).
2. Locate the runs' complete episodes from the small arrays only (no frames are read).
3. n = ceil(transitions / mean episode length) episodes are drawn uniformly, with replacement as the
   official script does (duplicates possible; `replace=False` draws distinct ones).
Unlike the official script, an episode is only ever a whole one: each chunk's leading fragment (the
end of an episode begun in the previous chunk) is joined to its start or dropped, never counted alone.
It runs on any episode source (jowa.data.source): a Minari source's runs are its datasets.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from jowa.data.episodes import Episode
from jowa.data.replay import EpisodeSpan, ReadStats
from jowa.data.replay_layout import run_order
from jowa.data.source import EpisodeSource, open_source
from jowa.games import check_game, task_id


def choose_runs(runs_available: Mapping[str, Sequence[str]], runs_per_game: int, seed: int = 0) -> dict[str, list[str]]:
    """{game: sorted chosen runs}; one legacy RNG drawn game after game in the mapping's order."""
    rng = np.random.RandomState(seed)
    chosen = {}
    for game, runs in runs_available.items():
        if len(runs) < runs_per_game:
            raise ValueError(f"{game}: {runs_per_game} runs requested, only {list(runs)} available")
        picked = rng.choice(np.asarray(runs, dtype=object), runs_per_game, replace=False)
        chosen[check_game(game)] = sorted(picked.tolist(), key=run_order)
    return chosen


@dataclass
class Selection:
    """Chosen episodes of one game: copies[run][start] = how many times the episode was drawn."""

    game: str
    runs: list[str]
    available_episodes: int
    available_transitions: int
    copies: dict[str, Counter] = field(default_factory=dict)

    @property
    def episodes(self) -> int:
        return sum(sum(c.values()) for c in self.copies.values())


def select_episodes(
    source: EpisodeSource | str | os.PathLike,
    game: str,
    runs: Sequence[str],
    transitions: int,
    *,
    seed: int = 0,
    replace: bool = True,
    **options,
) -> Selection:
    """Draw episodes of `game` from `runs` to total about `transitions` steps (in expectation).

    `source`: an episode source or its spec (`jowa.data.source.open_source`, with `options`)."""
    source = open_source(source, **options)
    spans: list[EpisodeSpan] = [s for run in runs for s in source.scan(game, run)]
    if not spans:
        raise ValueError(f"{game}: no complete episode in runs {list(runs)} under {source.root}")
    total = sum(s.length for s in spans)
    wanted = math.ceil(transitions / (total / len(spans)))
    rng = np.random.default_rng([seed, task_id(game)])
    if replace:
        picks = np.sort(rng.integers(0, len(spans), wanted))
    else:
        picks = np.sort(rng.permutation(len(spans))[: min(wanted, len(spans))])
    copies: dict[str, Counter] = {run: Counter() for run in runs}
    for index in picks.tolist():
        copies[spans[index].run][spans[index].start] += 1
    return Selection(check_game(game), list(runs), len(spans), total, copies)


def read_selection(
    source: EpisodeSource | str | os.PathLike, selection: Selection, *, stats: ReadStats | None = None, **options
) -> Iterator[tuple[Episode, int]]:
    """(episode, copies) for every chosen episode; only the chosen ones have their frames read."""
    source = open_source(source, **options)
    for run in selection.runs:
        chosen = selection.copies[run]
        if chosen:
            for episode in source.read(selection.game, run, want=lambda r, start: start in chosen, stats=stats):
                yield episode, chosen[episode.start]


def plan_subsample(
    source: EpisodeSource | str | os.PathLike,
    games: Sequence[str],
    *,
    runs_per_game: int = 2,
    transitions_per_game: int = 10_000_000,
    seed: int = 0,
    replace: bool = True,
    **options,
) -> dict[str, Selection]:
    """The official recipe over several games: choose runs, then draw episodes per game."""
    source = open_source(source, **options)
    runs = choose_runs({check_game(g): source.runs(g) for g in games}, runs_per_game, seed)
    return {g: select_episodes(source, g, r, transitions_per_game, seed=seed, replace=replace)
            for g, r in runs.items()}
