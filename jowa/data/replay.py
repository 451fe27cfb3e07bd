"""Reader of DQN-Replay (Dopamine logged replay buffers): runs of gzip'd `.npy` chunks → whole episodes.

Layout: `{root}/{Game}/{run}/replay_logs/{member}_ckpt.{N}.gz` with the members `$store$_observation`
(u8[C, 84, 84]), `$store$_action` (i32[C], minimal-set index), `$store$_reward` (f32[C]),
`$store$_terminal` (u8[C]), `add_count` (0-d int) and `invalid_range` (int[5]). Runs and suffixes are
discovered by listing. See docs/dqn_replay_format.md.

Time order inside a chunk. Dopamine logs the circular buffer whenever `add_count % C == C - 1`:
- chunk 0 holds rows 0..add_count-1 in order (row C-1 was never written when it was logged);
- a later regular chunk holds C new rows; the oldest sits at the cursor, so rows run
  `[C-1, 0, 1, …, C-2]`; in general the new rows are the last `min(add_count - previous, C)` adds;
- the final chunk (`log_final_buffer`) stores the cursor in `add_count`, and only the rows added since
  the previous log are new: `[C-1, 0, …, cursor-1]`; the rest are stale copies and are ignored.
Dopamine checks the log condition only after real adds, so a log point that falls on an episode's
padding rows is skipped and the next chunk is logged C adds later; regular chunks reveal this through
add_count, but a final chunk stores only the cursor, so a skipped log just before it cannot be seen (the
reader assumes none). It needs a log point inside 3 padding rows, about 3 chances in C per episode.
Row i is (o_i, a_i, r_i, terminal_i); every episode starts with 3 all-zero padding rows (dropped here) and
ends at terminal != 0 (game over, or Dopamine's 27k-step cap, which the 2019 data also marks terminal).

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
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jowa.data.episodes import Episode
from jowa.data.npy_gz import DataFileError, NpyGzReader, load_npy_gz
from jowa.games import GAME_NAMES, check_game, minimal_to_full

log = logging.getLogger(__name__)

STORE = ("observation", "action", "reward", "terminal")
STORE_DTYPES = {"observation": np.uint8, "action": np.int32, "reward": np.float32, "terminal": np.uint8}
FRAME_SHAPE = (84, 84)
PADDING_ROWS = 3  # stack_size - 1 all-zero rows before every episode
_FILE = re.compile(r"^(\$store\$_(?:observation|action|reward|terminal)|add_count|invalid_range)_ckpt\.(\d+)\.gz$")


def member_path(log_dir: str | os.PathLike, member: str, suffix: int) -> Path:
    """`member` is a store name ("observation", …) or "add_count" / "invalid_range"."""
    prefix = f"$store$_{member}" if member in STORE else member
    return Path(log_dir) / f"{prefix}_ckpt.{suffix}.gz"


def replay_log_dir(root: str | os.PathLike, game: str, run: str | int) -> Path:
    return Path(root) / game / str(run) / "replay_logs"


def list_games(root: str | os.PathLike) -> list[str]:
    """Catalogue games with a directory under `root`, in task-id order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Replay root {root} is not a directory")
    return [g for g in GAME_NAMES if (root / g).is_dir()]


def list_runs(root: str | os.PathLike, game: str) -> list[str]:
    """Run directories of `game` that hold a replay_logs folder, numerically sorted."""
    game_dir = Path(root) / check_game(game)
    if not game_dir.is_dir():
        raise FileNotFoundError(f"No replay directory for {game}: {game_dir}")
    return sorted((p.name for p in game_dir.iterdir() if (p / "replay_logs").is_dir()), key=run_order)


def run_order(run: str) -> tuple[bool, int, str]:
    """Sort key: numeric run names numerically ("2" < "10"), then the others by name."""
    return (not run.isdigit(), int(run) if run.isdigit() else 0, run)


def list_suffixes(log_dir: str | os.PathLike) -> dict[int, set[str]]:
    """Suffix → members present ("observation", …, "add_count", "invalid_range")."""
    found: dict[int, set[str]] = {}
    for name in os.listdir(log_dir):
        match = _FILE.match(name)
        if match:
            member = match.group(1).removeprefix("$store$_")
            found.setdefault(int(match.group(2)), set()).add(member)
    return dict(sorted(found.items()))


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


# --- one chunk ------------------------------------------------------------------------------------------

@dataclass
class _Chunk:
    log_dir: Path
    suffix: int
    capacity: int
    base: int  # global add index of the chunk's oldest new row (time 0)
    length: int  # new rows, in time order
    actions: np.ndarray  # [length] int32 minimal index, time order
    rewards: np.ndarray  # [length] float32
    terminals: np.ndarray  # [length] uint8
    stored: tuple[np.ndarray, ...] = ()  # the file's action, reward and terminal arrays, file order [capacity]

    @property
    def end(self) -> int:
        return self.base + self.length

    def file_runs(self, start: int, stop: int) -> list[tuple[int, int, int]]:
        """Time rows [start, stop) as contiguous file-row runs (file_start, file_stop, offset from start)."""
        first = (self.base + start) % self.capacity
        count = stop - start
        if first + count <= self.capacity:
            return [(first, first + count, 0)]
        head = self.capacity - first
        return [(first, self.capacity, 0), (0, count - head, head)]


def _load_count(path: Path, what: str) -> np.ndarray:
    with NpyGzReader(path) as reader:
        if reader.dtype.kind not in "iu":
            raise DataFileError(path, f"{what} must be an integer array, found {reader.dtype}")
        value = reader.read_rows(reader.shape[0] if reader.shape else 1)
        reader.check_end()
    return value


def _rewritten_since(prev: _Chunk, stored: tuple[np.ndarray, ...], cursor: int) -> bool:
    """Whether a final chunk's rows [cursor, C-2] differ from the previous chunk's: had fewer than C rows come
    since that log, they would be the same stale rows (Dopamine's buffer overwrites in place)."""
    rows = slice(cursor, prev.capacity - 1)
    return any(not np.array_equal(new[rows], old[rows]) for new, old in zip(stored, prev.stored))


def _load_chunk(
    log_dir: Path, suffix: int, present: set[str], prev: _Chunk | None, num_minimal: int, assume_full: bool
) -> _Chunk:
    """Small arrays of one suffix, validated and put in time order (frames stay on disk); `prev` is the
    previous suffix's chunk when this one follows it directly."""
    prev_end = None if prev is None else prev.end
    required = list(STORE) + ([] if assume_full and "add_count" not in present else ["add_count"])
    for member in required:
        if member not in present:
            raise DataFileError(
                member_path(log_dir, member, suffix),
                f"missing member of suffix {suffix} (found: {sorted(present)})"
                + ("; for downloads of the 4 $store$ arrays only, tokenize with "
                   "`data/atari/prepare.py tokenize --assume-full-chunks`"
                   if member == "add_count" else ""))
    actions = load_npy_gz(member_path(log_dir, "action", suffix), np.int32, (None,))
    capacity = len(actions)
    rewards = load_npy_gz(member_path(log_dir, "reward", suffix), np.float32, (capacity,))
    terminals = load_npy_gz(member_path(log_dir, "terminal", suffix), np.uint8, (capacity,))
    with NpyGzReader(member_path(log_dir, "observation", suffix)) as obs:
        obs.expect(np.uint8, (capacity, *FRAME_SHAPE))

    if "add_count" in present:
        count_path = member_path(log_dir, "add_count", suffix)
        count = _load_count(count_path, "add_count")
        if count.shape != ():
            raise DataFileError(count_path, f"add_count must be a 0-d array, found shape {count.shape}")
        add_count = int(count)
    else:
        add_count = (suffix + 1) * capacity - 1  # as if every log were a regular, on-time one
    if "invalid_range" in present:
        range_path = member_path(log_dir, "invalid_range", suffix)
        invalid = _load_count(range_path, "invalid_range")
        if invalid.ndim != 1 or add_count % capacity not in invalid:
            raise DataFileError(range_path, f"invalid_range {invalid.tolist()} does not contain the cursor "
                                f"{add_count % capacity} of add_count {add_count}")

    if add_count < 0:
        raise DataFileError(member_path(log_dir, "add_count", suffix), f"negative add_count {add_count}")
    if add_count >= capacity:  # a regular log: the last min(new adds, C) rows
        last = add_count - capacity if prev_end is None else prev_end
        if last > add_count:
            raise DataFileError(member_path(log_dir, "add_count", suffix),
                                f"add_count {add_count} is below the previous chunk's {last}")
        length = min(add_count - last, capacity)
        base = add_count - length
    elif suffix == 0:  # the first log (or a run shorter than one buffer): rows 0..add_count-1
        base, length = 0, add_count
    else:  # log_final_buffer: add_count holds the cursor; new rows follow the previous log's cursor
        last = suffix * capacity - 1 if prev_end is None else prev_end
        base, length = last, (add_count - last) % capacity
        if prev is not None and _rewritten_since(prev, (actions, rewards, terminals), add_count):
            # A log point fell inside an episode's padding and was skipped (Dopamine checks only after real
            # adds), so C or more rows came since the previous log: the whole buffer is new and the rows
            # between the two logs are lost. Read as the cursor-only count would, it splices episodes.
            base, length = last + length, capacity

    chunk = _Chunk(log_dir, suffix, capacity, base, length, actions, rewards, terminals,
                   stored=(actions, rewards, terminals))
    rows = np.concatenate([np.arange(a, b) for a, b, _ in chunk.file_runs(0, length)]) if length else np.arange(0)
    chunk.actions, chunk.rewards, chunk.terminals = actions[rows], rewards[rows], terminals[rows]
    bad = np.flatnonzero((chunk.actions < 0) | (chunk.actions >= num_minimal))
    if len(bad):
        raise DataFileError(member_path(log_dir, "action", suffix),
                            f"action {int(chunk.actions[bad[0]])} at row {int(rows[bad[0]])} is not an index into "
                            f"the game's {num_minimal} minimal actions")
    return chunk


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
    prev: _Chunk | None = None
    building = _Building(first=-1, valid=False)

    def drop(b: _Building) -> None:
        if b.rows:
            stats.fragments += 1
            stats.fragment_rows += b.rows

    for suffix in order:
        try:
            linked = prev is not None and prev.suffix == suffix - 1
            chunk = _load_chunk(log_dir, suffix, present[suffix], prev if linked else None,
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
