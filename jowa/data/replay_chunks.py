"""One DQN-Replay chunk (one suffix): its small arrays validated and put in time order; frames stay on disk.

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
Row i is (o_i, a_i, r_i, terminal_i); every episode starts with 3 all-zero padding rows (the reader drops them) and
ends at terminal != 0 (game over, or Dopamine's 27k-step cap, which the 2019 data also marks terminal).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jowa.data.npy_gz import DataFileError, NpyGzReader, load_npy_gz
from jowa.data.replay_layout import FRAME_SHAPE, STORE, member_path


@dataclass
class Chunk:
    """One suffix's small arrays in time order; `stored` keeps the file order for the next chunk's check."""

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


def _rewritten_since(prev: Chunk, stored: tuple[np.ndarray, ...], cursor: int) -> bool:
    """Whether a final chunk's rows [cursor, C-2] differ from the previous chunk's: had fewer than C rows come
    since that log, they would be the same stale rows (Dopamine's buffer overwrites in place)."""
    rows = slice(cursor, prev.capacity - 1)
    return any(not np.array_equal(new[rows], old[rows]) for new, old in zip(stored, prev.stored))


def load_chunk(
    log_dir: Path, suffix: int, present: set[str], prev: Chunk | None, num_minimal: int, assume_full: bool
) -> Chunk:
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

    chunk = Chunk(log_dir, suffix, capacity, base, length, actions, rewards, terminals,
                   stored=(actions, rewards, terminals))
    rows = np.concatenate([np.arange(a, b) for a, b, _ in chunk.file_runs(0, length)]) if length else np.arange(0)
    chunk.actions, chunk.rewards, chunk.terminals = actions[rows], rewards[rows], terminals[rows]
    bad = np.flatnonzero((chunk.actions < 0) | (chunk.actions >= num_minimal))
    if len(bad):
        raise DataFileError(member_path(log_dir, "action", suffix),
                            f"action {int(chunk.actions[bad[0]])} at row {int(rows[bad[0]])} is not an index into "
                            f"the game's {num_minimal} minimal actions")
    return chunk
