"""A DQN-Replay run that survives crashes: `ReplayWriter` chunks plus committed segments of raw rows.

Dopamine's writer keeps up to a million rows in memory between two chunk files, so a crash would lose
them. Here every `commit` also saves the store rows added since the previous commit as a segment file
(`.segments/{start}-{stop}.npz`), and the caller's state record names the chunk count, add count and
segments that belong to the commit. `restore` rebuilds the writer exactly: the newest committed chunk's
store, overwritten by the committed segments' rows; chunk and segment files written after the commit
(by a run that crashed before committing) are deleted first. Segments older than the newest chunk are
deleted as soon as a commit no longer needs them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from jowa.atomic import atomic_file
from jowa.data.npy_gz import load_npy_gz
from jowa.data.replay_layout import FRAME_SHAPE, STORE, STORE_DTYPES, list_suffixes, member_path
from jowa.data.replay_writer import ReplayWriter

SEGMENTS = ".segments"


@dataclass
class LogState:
    """What a commit records about the log (JSON-friendly)."""

    add_count: int = 0
    log_count: int = 0
    count_at_last_log: int = -1
    segments: list[list[int]] = field(default_factory=list)  # [start, stop) add counts of each segment file


class ResumableLog:
    """Wraps a `ReplayWriter` for `log_dir`; `commit()` returns the `LogState` to record."""

    def __init__(self, log_dir: Path, capacity: int, compresslevel: int = 6, state: LogState | None = None):
        self.log_dir = Path(log_dir)
        self.writer = ReplayWriter(self.log_dir, capacity, compresslevel=compresslevel)
        self.segment_dir = self.log_dir.parent / SEGMENTS
        self.segment_dir.mkdir(parents=True, exist_ok=True)
        self.state = LogState()
        self._saved = 0  # add count up to which rows are in segment files
        self._obsolete: list[list[int]] = []
        self._discard_uncommitted(state or LogState())
        if state is not None and state.add_count:
            self._restore(state)

    def add_episode(self, frames: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """One whole episode (raw rewards; clipped here as Dopamine stored them), terminal on its last row.

        Rows go into the writer in pieces small enough that the unsaved rows never exceed the capacity
        (older ones would be overwritten before they are saved); adding in pieces stores the same rows.
        """
        n = len(actions)
        terminals = np.zeros(n, dtype=np.uint8)
        terminals[-1] = 1
        clipped = np.clip(np.asarray(rewards, dtype=np.float32), -1.0, 1.0)
        w, done = self.writer, 0
        while done < n:
            room = w.capacity - (w.add_count - self._saved) - w.stack_size  # leave space for padding rows
            if room <= 0:
                self._save_segment()
                continue
            take = min(n - done, room)
            w.add_rows(frames[done:done + take], np.asarray(actions[done:done + take]), clipped[done:done + take],
                       terminals[done:done + take])
            done += take

    def commit(self) -> LogState:
        """Save the rows added since the last commit; the returned state is valid once the caller records it."""
        w = self.writer
        self._save_segment()
        self.state.add_count = w.add_count
        self.state.log_count = w.log_count
        self.state.count_at_last_log = w._count_at_last_log
        # Rows before the newest chunk's log point live in that chunk: their segments are not needed.
        needed = [s for s in self.state.segments if s[1] > max(w._count_at_last_log, 0)]
        self._obsolete = [s for s in self.state.segments if s not in needed]
        self.state.segments = needed
        return LogState(**asdict(self.state))

    def _save_segment(self) -> None:
        w, start = self.writer, self._saved
        if w.add_count > start:
            _save_segment(self.segment_dir / f"{start}-{w.add_count}.npz", _store_rows(w, start, w.add_count))
            self.state.segments.append([start, w.add_count])
            self._saved = w.add_count

    def forget_obsolete(self) -> None:
        """Delete the segments the last recorded commit no longer names."""
        for start, stop in self._obsolete:
            (self.segment_dir / f"{start}-{stop}.npz").unlink(missing_ok=True)
        self._obsolete = []

    def finish(self) -> None:
        """`log_final_buffer`, then the segments go: the chunks hold every row."""
        self.writer.log_final()
        for path in self.segment_dir.glob("*.npz"):
            path.unlink()
        self.segment_dir.rmdir()

    # --- internals ---

    def _discard_uncommitted(self, state: LogState) -> None:
        for suffix in list_suffixes(self.log_dir):
            if suffix >= state.log_count:
                for member in (*STORE, "add_count", "invalid_range"):
                    member_path(self.log_dir, member, suffix).unlink(missing_ok=True)
        named = {f"{a}-{b}.npz" for a, b in state.segments}
        for path in self.segment_dir.iterdir():
            if path.name not in named:
                path.unlink()

    def _restore(self, state: LogState) -> None:
        w = self.writer
        if state.log_count:  # the store as the newest chunk saved it
            suffix = state.log_count - 1
            for name in STORE:
                shape = (w.capacity, *FRAME_SHAPE) if name == "observation" else (w.capacity,)
                w.store[name][:] = load_npy_gz(member_path(self.log_dir, name, suffix), STORE_DTYPES[name], shape)
        w.add_count = max(state.count_at_last_log, 0)
        for start, stop in state.segments:
            rows = dict(np.load(self.segment_dir / f"{start}-{stop}.npz"))
            skip = max(w.add_count - start, 0)  # rows already in the chunk's store
            w._store_rows({k: v[skip:] for k, v in rows.items()})
        if w.add_count != state.add_count:
            raise RuntimeError(f"{self.log_dir}: segments rebuild {w.add_count} rows, the commit says {state.add_count}")
        w.log_count = state.log_count
        w.logged_suffixes = list(range(state.log_count))
        w._count_at_last_log = state.count_at_last_log
        self.state = LogState(**asdict(state))
        self._saved = state.add_count


def _store_rows(writer: ReplayWriter, start: int, stop: int) -> dict[str, np.ndarray]:
    """The store's rows of add counts [start, stop) (they must not have been overwritten)."""
    index = np.arange(start, stop) % writer.capacity
    return {name: writer.store[name][index] for name in STORE}


def _save_segment(path: Path, rows: dict[str, np.ndarray]) -> None:
    with atomic_file(path) as tmp, open(tmp, "wb") as out:
        np.savez_compressed(out, **rows)  # Atari frames deflate ~40x at ~100 MB/s: cheap beside training
