"""Reader of DQN-Replay (Dopamine logged replay buffers): runs of gzip'd `.npy` chunks → whole episodes.

Layout: `jowa.data.replay_layout` (docs/dqn_replay_format.md); one chunk in time order: `jowa.data.replay_chunks`.

Episodes crossing a chunk boundary are joined when the chunks are consecutive suffixes whose add counts
connect. Rows whose episode start was not seen (the first chunk read is not chunk 0, a suffix is
missing or skipped, or Dopamine skipped a log) are a fragment: dropped and counted, never yielded as an
episode; so is the unfinished episode at the end of a run. This fixes the official subsampler treating
each chunk's first fragment as a whole episode (docs/official_jowa.md §1.3).

Observation chunks (~7 GB decompressed) are streamed block by block; an episode is yielded as soon as
its frames have been read, so within a chunk episodes come in the order their last frame streams by
(the one holding the wrapped row C-1 comes last). Order is deterministic.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jowa.data.episodes import Episode
from jowa.data.npy_gz import DataFileError, NpyGzReader
from jowa.data.replay_chunks import Chunk, load_chunk
from jowa.data.replay_layout import (
    FRAME_SHAPE, PADDING_ROWS, list_games, list_runs, list_suffixes, member_path, replay_log_dir,
)
from jowa.games import check_game, minimal_to_full

log = logging.getLogger(__name__)


@dataclass
class ReadStats:
    """What a read produced and what it left out (shared across runs when passed in)."""

    episodes: int = 0
    transitions: int = 0
    not_wanted: int = 0  # complete episodes the `want` filter declined
    fragments: int = 0  # partial episodes dropped: start not seen, or unfinished at the end
    fragment_rows: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, problem) with skip_bad


@dataclass(frozen=True)
class EpisodeSpan:
    """An episode located without reading frames: `start` as in Episode, `length` real steps."""

    game: str
    run: str
    start: int
    length: int


# --- assembling episodes across chunks ------------------------------------------------------------------

@dataclass
class _Building:
    """An episode being assembled; `first` is the global index of its first (padding) row."""

    first: int
    valid: bool  # its start was seen
    wanted: bool = False
    rows: int = 0
    pending: int = 0  # frame rows still to be read from the current chunk
    ended: bool = False
    where: str = ""  # file of its first row, for error messages
    frames: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[np.ndarray] = field(default_factory=list)
    terminals: list[np.ndarray] = field(default_factory=list)


@dataclass
class _Job:
    file_start: int
    file_stop: int
    dest: np.ndarray  # [k, 84, 84] frames of one piece
    offset: int  # dest row of file_start
    building: _Building


def _stream_frames(path: Path, capacity: int, jobs: list[_Job], block_rows: int) -> Iterator[None]:
    """Fill every job's frames from the observation file, yielding after each block read.

    Takes ownership of `jobs` and empties it as jobs finish, so a finished episode's frames are held
    only by the episode (memory stays at about one episode plus one block, not one chunk).
    """
    jobs.sort(key=lambda j: j.file_start, reverse=True)  # pop() hands them out in file order
    stop = max(j.file_stop for j in jobs)
    with NpyGzReader(path) as reader:
        reader.expect(np.uint8, (capacity, *FRAME_SHAPE))
        active: list[_Job] = []
        for b0 in range(0, stop, block_rows):
            b1 = min(b0 + block_rows, stop)
            block = reader.read_rows(b1 - b0)  # [b1-b0, 84, 84]
            while jobs and jobs[-1].file_start < b1:
                active.append(jobs.pop())
            still = []
            for job in active:
                lo, hi = max(b0, job.file_start), min(b1, job.file_stop)
                if lo < hi:
                    at = job.offset + lo - job.file_start
                    job.dest[at:at + hi - lo] = block[lo - b0:hi - b0]
                    job.building.pending -= hi - lo
                if job.file_stop > b1:
                    still.append(job)
            active = still
            yield
        if stop == capacity:
            reader.check_end()  # a full pass also verifies the gzip CRC


def _finish(b: _Building, game: str, run: str, to_full: np.ndarray, frames: bool) -> Episode | EpisodeSpan:
    """Check the padding rows, drop them, map actions to the full set."""
    actions = np.concatenate(b.actions)
    rewards = np.concatenate(b.rewards)
    terminals = np.concatenate(b.terminals)
    pad = PADDING_ROWS
    stacked = (b.frames[0] if len(b.frames) == 1 else np.concatenate(b.frames)) if frames else None  # [rows, 84, 84]
    if (b.rows <= pad or actions[:pad].any() or rewards[:pad].any() or terminals[:pad].any()
            or (stacked is not None and stacked[:pad].any())):
        raise DataFileError(b.where, f"the episode starting at global row {b.first} does not begin with "
                            f"{pad} all-zero padding rows followed by at least one step")
    start = b.first + pad
    if not frames:
        return EpisodeSpan(game, run, start, b.rows - pad)
    return Episode(
        frames=stacked[pad:],
        actions=to_full[actions[pad:]],
        rewards=rewards[pad:],
        terminals=terminals[pad:],
        game=game, run=run, start=start,
    )


def _iter_run(
    root: str | os.PathLike,
    game: str,
    run: str,
    *,
    frames: bool,
    want: Callable[[str, int], bool] | None,
    suffixes: Iterable[int] | None,
    skip_bad: bool,
    assume_full_chunks: bool,
    stats: ReadStats,
    block_rows: int,
) -> Iterator[Episode | EpisodeSpan]:
    game = check_game(game)
    to_full = np.asarray(minimal_to_full(game), dtype=np.int64)
    log_dir = replay_log_dir(root, game, run)
    present = list_suffixes(log_dir)
    order = sorted(present) if suffixes is None else sorted(set(suffixes) & set(present))
    prev: Chunk | None = None
    building = _Building(first=-1, valid=False)

    def drop(b: _Building) -> None:
        if b.rows:
            stats.fragments += 1
            stats.fragment_rows += b.rows

    for suffix in order:
        try:
            linked = prev is not None and prev.suffix == suffix - 1
            chunk = load_chunk(log_dir, suffix, present[suffix], prev if linked else None,
                                len(to_full), assume_full_chunks)
            if not (linked and chunk.base == prev.end):  # rows before this chunk are unknown
                drop(building)
                building = _Building(first=chunk.base, valid=chunk.base == 0)
            where = str(member_path(log_dir, "observation", suffix))
            jobs: list[_Job] = []
            finished: list[_Building] = []
            bounds = np.unique(np.concatenate([[0], np.flatnonzero(chunk.terminals) + 1, [chunk.length]]))
            for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
                b = building
                if b.rows == 0:
                    b.where = where
                    b.wanted = b.valid and (want is None or want(run, b.first + PADDING_ROWS))
                if b.wanted:
                    b.actions.append(chunk.actions[s:e])
                    b.rewards.append(chunk.rewards[s:e])
                    b.terminals.append(chunk.terminals[s:e])
                    if frames:
                        dest = np.empty((e - s, *FRAME_SHAPE), dtype=np.uint8)
                        b.frames.append(dest)
                        b.pending += e - s
                        jobs += [_Job(fs, fe, dest, off, b) for fs, fe, off in chunk.file_runs(s, e)]
                b.rows += e - s
                if chunk.terminals[e - 1]:
                    b.ended = True
                    finished.append(b)
                    building = _Building(first=chunk.base + e, valid=True)

            def ready() -> Iterator[Episode | EpisodeSpan]:
                nonlocal finished
                keep = []
                for b in finished:
                    if b.pending:
                        keep.append(b)
                    elif not b.valid:
                        drop(b)
                    elif not b.wanted:
                        stats.not_wanted += 1
                    else:
                        episode = _finish(b, game, run, to_full, frames)
                        stats.episodes += 1
                        stats.transitions += len(episode) if frames else episode.length
                        yield episode
                finished = keep

            if jobs:
                path = member_path(log_dir, "observation", suffix)
                for _ in _stream_frames(path, chunk.capacity, jobs, block_rows):  # empties `jobs`
                    yield from ready()
            yield from ready()
            prev = chunk
        except DataFileError as exc:
            if not skip_bad:
                raise
            log.warning("skipping %s suffix %d: %s", log_dir, suffix, exc)
            stats.skipped.append((exc.path, exc.problem))
            drop(building)
            building = _Building(first=-1, valid=False)
            prev = None
    drop(building)  # the run's unfinished last episode


def read_run(
    root: str | os.PathLike,
    game: str,
    run: str | int,
    *,
    want: Callable[[str, int], bool] | None = None,
    suffixes: Iterable[int] | None = None,
    skip_bad: bool = False,
    assume_full_chunks: bool = False,
    stats: ReadStats | None = None,
    block_rows: int = 2048,
) -> Iterator[Episode]:
    """Complete episodes of one run. `want(run, start)` (if given) picks which to read frames for.

    skip_bad: log, count (in `stats.skipped`) and skip a suffix with a bad file instead of raising.
    assume_full_chunks: accept suffixes without add_count (downloads of the 4 $store$ arrays, as the
    official download script makes) by assuming every chunk is a regular, on-time log.
    """
    yield from _iter_run(root, game, str(run), frames=True, want=want, suffixes=suffixes, skip_bad=skip_bad,
                         assume_full_chunks=assume_full_chunks, stats=stats or ReadStats(), block_rows=block_rows)


def scan_run(
    root: str | os.PathLike,
    game: str,
    run: str | int,
    *,
    suffixes: Iterable[int] | None = None,
    skip_bad: bool = False,
    assume_full_chunks: bool = False,
    stats: ReadStats | None = None,
) -> Iterator[EpisodeSpan]:
    """The run's complete episodes located from the small arrays only (no frames are decompressed)."""
    yield from _iter_run(root, game, str(run), frames=False, want=None, suffixes=suffixes, skip_bad=skip_bad,
                         assume_full_chunks=assume_full_chunks, stats=stats or ReadStats(), block_rows=0)


def read_episodes(
    root: str | os.PathLike,
    games: Iterable[str] | None = None,
    runs: Iterable[str | int] | None = None,
    **kwargs,
) -> Iterator[Episode]:
    """Every complete episode under `root` (games in task-id order, runs numerically); kwargs as read_run."""
    for game in (list_games(root) if games is None else [check_game(g) for g in games]):
        for run in (list_runs(root, game) if runs is None else [str(r) for r in runs]):
            yield from read_run(root, game, run, **kwargs)
