"""The new game's few transitions: choose them in an episode source (jowa.data.source), read them, tokenize
them into memory.

Selection (`data.select`) over the game's complete episodes, all runs in run order as one stream:
- `first`: episodes from the start of the stream;
- `last`: episodes from its end;
- `random`: whole episodes drawn at random (seeded);
- `last-fraction=F`: whole episodes drawn at random among those that start in the last F of the stream
  (the paper's "expert" data came from the last 20 % of DQN-Replay).
Exactly `transitions` steps are kept: the episode that crosses the budget is cut (its beginning is kept,
except for `last`, which keeps the end of its earliest episode). A cut end is not terminal: it is where
the data stops, not where the game ended.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from jowa.data.episodes import Episode
from jowa.data.replay import EpisodeSpan
from jowa.data.source import EpisodeSource, open_source
from jowa.data.tokenize import encode_episodes
from jowa.games import check_game


class NotEnoughData(ValueError):
    """The replay holds fewer transitions of the game than asked for."""


@dataclass(frozen=True)
class Pick:
    """Steps [first, first + length) of one episode."""

    span: EpisodeSpan
    first: int
    length: int


@dataclass
class MemoryEpisode:
    """A tokenized episode held in memory; duck-types `jowa.data.shards.TokenEpisode` for `collate`."""

    tokens: np.ndarray  # [n, 36] uint16
    actions: np.ndarray  # [n] int64 full-set index
    rewards: np.ndarray  # [n] float32 as stored
    terminals: np.ndarray  # [n] uint8
    game: str
    frames: np.ndarray | None = None  # [n, 84, 84] uint8, kept only when the tokenizer is fine-tuned

    @property
    def steps(self) -> int:
        return len(self.actions)


@dataclass
class GameData:
    game: str
    episodes: list[MemoryEpisode]
    picks: list[Pick] = field(default_factory=list)

    @property
    def transitions(self) -> int:
        return sum(e.steps for e in self.episodes)

    def describe(self) -> list[dict[str, Any]]:
        """Where every kept piece came from (for the run record)."""
        return [{"run": p.span.run, "start": p.span.start + p.first, "steps": p.length,
                 "whole_episode": p.first == 0 and p.length == p.span.length} for p in self.picks]


def parse_selection(select: str) -> tuple[str, float]:
    """"first" → ("first", 1.0); "last-fraction=0.2" → ("random", 0.2)."""
    if select in ("first", "last", "random"):
        return select, 1.0
    if select.startswith("last-fraction="):
        fraction = float(select.split("=", 1)[1])
        if not 0 < fraction <= 1:
            raise ValueError(f"--from {select}: the fraction must lie in (0, 1]")
        return "random", fraction
    raise ValueError(f"--from {select!r}: choose first, last, random or last-fraction=F")


def game_spans(replay: EpisodeSource | str | os.PathLike, game: str) -> list[EpisodeSpan]:
    """Every complete episode of `game` in the source `replay`, runs in run order (no frames are read)."""
    game, source = check_game(game), open_source(replay)
    if game not in source.games():
        raise FileNotFoundError(f"No replay data for {game} in {source.describe()} (it has {source.games()})")
    spans = [span for run in source.runs(game) for span in source.scan(game, run)]
    if not spans:
        raise NotEnoughData(f"{source.describe()}: {game} holds no complete episode")
    return spans


def choose(spans: list[EpisodeSpan], transitions: int, select: str, seed: int = 0) -> list[Pick]:
    """Pieces of episodes summing to exactly `transitions` steps, in stream order."""
    kind, fraction = parse_selection(select)
    total = sum(s.length for s in spans)
    pool = list(range(len(spans)))
    if fraction < 1:  # episodes that start in the last `fraction` of the stream
        starts = np.cumsum([0] + [s.length for s in spans[:-1]])
        pool = [i for i in pool if starts[i] >= (1 - fraction) * total]
    available = sum(spans[i].length for i in pool)
    if available < transitions:
        where = "" if fraction == 1 else f" in the last {fraction:g} of the stream (of {total} in all)"
        raise NotEnoughData(f"{spans[0].game}: the replay holds {available} transitions in complete episodes{where}; "
                            f"asked for {transitions} (collect more with data/atari/collect.py or lower --transitions)")
    if kind == "last":
        pool = pool[::-1]
    elif kind == "random":
        pool = [pool[i] for i in np.random.default_rng([seed, 5]).permutation(len(pool))]
    picks, left = [], transitions
    for i in pool:
        span = spans[i]
        length = min(span.length, left)
        first = span.length - length if kind == "last" else 0
        picks.append((i, Pick(span, first, length)))
        left -= length
        if not left:
            break
    return [p for _, p in sorted(picks, key=lambda item: item[0])]


def read_picks(replay: EpisodeSource | str | os.PathLike, picks: list[Pick]) -> list[Episode]:
    """The frames and labels of the picked pieces, in pick order."""
    source = open_source(replay)
    by_run: dict[str, dict[int, Pick]] = {}
    for p in picks:
        by_run.setdefault(p.span.run, {})[p.span.start] = p
    found: dict[tuple[str, int], Episode] = {}
    game = picks[0].span.game
    for run, wanted in by_run.items():
        for episode in source.read(game, run, want=lambda r, start, w=wanted: start in w):
            p = wanted[episode.start]
            found[(run, episode.start)] = cut(episode, p.first, p.length)
    missing = [p for p in picks if (p.span.run, p.span.start) not in found]
    if missing:
        raise RuntimeError(f"{source.describe()} {game}: episodes {[(p.span.run, p.span.start) for p in missing][:3]} "
                           f"were found by the scan but not when reading frames")
    return [found[(p.span.run, p.span.start)] for p in picks]


def cut(episode: Episode, first: int, length: int) -> Episode:
    """Steps [first, first + length); the terminal flag survives only where the episode's end is kept."""
    stop = first + length
    return Episode(
        frames=episode.frames[first:stop], actions=episode.actions[first:stop], rewards=episode.rewards[first:stop],
        terminals=episode.terminals[first:stop].copy(), game=episode.game, run=episode.run, start=episode.start + first,
    )


def tokenize(
    episodes: list[Episode], tokenizer: torch.nn.Module, batch_frames: int, device: torch.device,
    keep_frames: bool = False,
) -> list[MemoryEpisode]:
    """Episodes → in-memory token episodes with the (eval-mode) tokenizer."""
    was_training = tokenizer.training
    tokenizer.eval()
    out = [
        MemoryEpisode(tokens, e.actions, e.rewards, e.terminals, e.game, e.frames if keep_frames else None)
        for e, tokens in encode_episodes(tokenizer.encode_tokens, episodes, batch_frames=batch_frames, device=device)
    ]
    tokenizer.train(was_training)
    return out


def load_game_data(
    replay: EpisodeSource | str | os.PathLike, picks: list[Pick], tokenizer: torch.nn.Module, batch_frames: int,
    device: torch.device, keep_frames: bool = False,
) -> GameData:
    """Read and tokenize the pieces `choose` picked (once, in `prepare`)."""
    episodes = tokenize(read_picks(replay, picks), tokenizer, batch_frames, device, keep_frames)
    return GameData(picks[0].span.game, episodes, picks)
