"""Episodes → token shards: read episodes (any jowa.data.source), encode every frame once, write resumable
shards + index.

Each (game, run) is one stream of shards `{Game}-{run}-{i:05d}.tar`. Re-running skips the episodes held
by finished shards (their frames are not even decompressed) and continues the numbering; unfinished
leftovers of an interrupted run are deleted first. Reading (gzip, a CPU thread) overlaps encoding.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from jowa.data.episodes import Episode
from jowa.data.replay import ReadStats
from jowa.data.shards import ShardWriter, finished_records, write_index
from jowa.data.source import EpisodeSource, open_source
from jowa.data.subsample import plan_subsample
from jowa.data.tokenize import Encoder, encode_episodes, load_encoder
from jowa.games import check_game

log = logging.getLogger(__name__)
T = TypeVar("T")


def prefetch(items: Iterator[T], depth: int = 4) -> Iterator[T]:
    """Run `items` in a background thread, `depth` ahead (gzip and numpy release the GIL)."""
    q: queue.Queue = queue.Queue(depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as exc:  # re-raised in the consumer
            q.put(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(0.05)


@dataclass
class TokenizeReport:
    shards_written: int
    shards_kept: int
    episodes: int
    transitions: int
    read: ReadStats
    index: Path


def tokenize_replay(
    replay: EpisodeSource | str | os.PathLike,
    encoder: str | Encoder,
    out: str | os.PathLike,
    *,
    games: Sequence[str] | None = None,
    runs: Sequence[str] | None = None,
    encoder_name: str | None = None,
    runs_per_game: int | None = None,
    transitions_per_game: int | None = None,
    seed: int = 0,
    batch_frames: int = 4096,
    device: str = "cpu",
    max_steps_per_shard: int = 100_000,
    skip_bad: bool = False,
    assume_full_chunks: bool = False,
    progress: bool = True,
) -> TokenizeReport:
    """Tokenize every complete episode (or JOWA's subsample when runs_per_game/transitions_per_game).

    `replay`: an episode source or its spec (`open_source`; skip_bad/assume_full_chunks are DQN-Replay's)."""
    if isinstance(encoder, str):
        encode, identity = load_encoder(encoder, device)
    else:
        encode, identity = encoder, encoder_name or getattr(encoder, "__qualname__", type(encoder).__name__)
    out = Path(out)
    records = finished_records(out, clean=True)
    stale = sorted({r["tokenizer"] for r in records} - {identity})
    if stale:
        raise ValueError(f"{out} holds shards from tokenizer {stale[0]}, not {identity}; use another --out")
    source = open_source(replay, skip_bad=skip_bad, assume_full_chunks=assume_full_chunks)
    games = source.games() if games is None else [check_game(g) for g in games]
    stats = ReadStats()
    subsample = runs_per_game is not None or transitions_per_game is not None
    # The official recipe's values (2 runs, 10M transitions per game) fill in whichever is not given.
    plan = plan_subsample(source, games, runs_per_game=runs_per_game or 2,
                          transitions_per_game=transitions_per_game or 10_000_000, seed=seed) if subsample else None

    written = kept = episodes = transitions = 0
    bar = tqdm(unit="fr", disable=not progress, desc="tokenize")
    for game in games:
        for run in (plan[game].runs if plan else [str(r) for r in (runs or source.runs(game))]):
            prefix = f"{game}-{run}"
            mine = [r for r in records if r["shard"].startswith(prefix + "-")]
            done = {e["id"].rsplit("/", 1)[0] for r in mine for e in r["episodes"]}  # "Game/run/start"
            kept += len(mine)
            first = 1 + max((int(r["shard"][len(prefix) + 1:-4]) for r in mine), default=-1)

            def want(run_: str, start: int) -> bool:
                return f"{game}/{run_}/{start}" not in done

            if plan:
                chosen = plan[game].copies[run]
                episodes_in: Iterator[tuple[Episode, int]] = (
                    (e, chosen[e.start]) for e in source.read(game, run, stats=stats,
                                                              want=lambda r_, s: s in chosen and want(r_, s)))
            else:
                episodes_in = ((e, 1) for e in source.read(game, run, want=want, stats=stats))
            copies: dict[str, int] = {}
            with_copies = ((e, copies.setdefault(e.key, c)) for e, c in prefetch(episodes_in))
            writer = ShardWriter(out, prefix, identity, max_steps=max_steps_per_shard, first_index=first)
            for episode, tokens in encode_episodes(encode, (e for e, _ in with_copies), batch_frames=batch_frames,
                                                   device=device):
                for copy in range(copies.pop(episode.key)):
                    writer.write(f"{episode.key}/{copy}", game, tokens, episode.actions, episode.rewards,
                                 episode.terminals)
                    episodes += 1
                    transitions += len(episode)
                writer.roll_if_full()
                bar.update(len(episode))
            writer.close()
            written += len(writer.finished)
    bar.close()
    where = source.describe() if isinstance(replay, EpisodeSource) else str(replay)
    extra = {"source": {"replay": where, "kind": source.kind, "games": games, "subsample": {
        "runs_per_game": runs_per_game, "transitions_per_game": transitions_per_game, "seed": seed} if plan else None}}
    index = write_index(out, extra)
    if stats.skipped:
        log.warning("skipped %d bad suffixes: %s", len(stats.skipped), stats.skipped)
    return TokenizeReport(written, kept, episodes, transitions, stats, index)
