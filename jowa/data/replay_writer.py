"""Writer of DQN-Replay chunks: Dopamine's logged circular replay buffer, row for row and byte for byte.

Mirrors `OutOfGraphLoggedReplayBuffer` (batch_rl) over Dopamine's `OutOfGraphReplayBuffer`:
- a circular store of `capacity` rows: observation u8[C, 84, 84], action i32[C] (minimal-set index),
  reward f32[C], terminal u8[C];
- before the first row of every episode (empty buffer, or previous row terminal) 3 all-zero rows;
- after every real add, if `add_count % C == C - 1`, the whole store is logged as suffix `log_count`
  (so chunk 0 lacks row C-1 and later chunks start at row C-1). The check runs only after real adds,
  never after padding rows: a log point that falls inside an episode's padding is skipped, as in Dopamine;
- `log_final()` is `log_final_buffer`: it logs with `add_count` replaced by the cursor;
- each member is `np.save`d into a gzip file named `{$store$_name|add_count|invalid_range}_ckpt.N.gz`,
  `add_count` as a 0-d int64 and `invalid_range` as int64[stack_size + update_horizon].
Rewards and terminals are stored as given: Dopamine's runner clipped rewards to [-1, 1] before adding.
Unwritten rows are zeros (Dopamine: `np.empty`), which keeps fixtures deterministic and costs no memory
until touched.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from jowa.data.npy_gz import save_npy_gz
from jowa.data.replay_layout import FRAME_SHAPE, STORE, member_path


class ReplayWriter:
    """Append transitions of one run; chunks appear in `log_dir` as the buffer fills."""

    def __init__(
        self,
        log_dir: str | os.PathLike,
        capacity: int = 1_000_000,
        *,
        stack_size: int = 4,
        update_horizon: int = 1,
        compresslevel: int = 6,
    ):
        if capacity < stack_size + update_horizon:
            raise ValueError(f"capacity {capacity} is smaller than stack_size + update_horizon")
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.capacity = capacity
        self.stack_size = stack_size
        self.update_horizon = update_horizon
        self.compresslevel = compresslevel
        self.store = {
            "observation": np.zeros((capacity, *FRAME_SHAPE), dtype=np.uint8),
            "action": np.zeros(capacity, dtype=np.int32),
            "reward": np.zeros(capacity, dtype=np.float32),
            "terminal": np.zeros(capacity, dtype=np.uint8),
        }
        self.add_count = 0
        self.log_count = 0
        self.logged_suffixes: list[int] = []
        self._count_at_last_log = -1

    @property
    def cursor(self) -> int:
        return self.add_count % self.capacity

    def add(self, observation: np.ndarray, action: int, reward: float, terminal: bool | int) -> None:
        """One transition, as Dopamine's `add(observation, action, reward, terminal)`."""
        self.add_rows(np.asarray(observation)[None], np.array([action]), np.array([reward]), np.array([terminal]))

    def add_rows(
        self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminals: np.ndarray
    ) -> None:
        """n consecutive transitions (they may end and start episodes), as n calls of `add`.

        observations [n, 84, 84] u8, actions [n] minimal-set index, rewards [n], terminals [n] in {0, 1}.
        """
        n = len(actions)
        observations = np.asarray(observations)
        if observations.shape != (n, *FRAME_SHAPE) or observations.dtype != np.uint8:
            got = f"{observations.dtype}{observations.shape}"
            raise ValueError(f"observations must be uint8{(n, *FRAME_SHAPE)}, got {got}")
        if len(rewards) != n or len(terminals) != n:
            raise ValueError(f"rows disagree: {n} actions, {len(rewards)} rewards, {len(terminals)} terminals")
        rows = {
            "observation": observations,
            "action": np.asarray(actions, dtype=np.int32),
            "reward": np.asarray(rewards, dtype=np.float32),
            "terminal": np.asarray(terminals, dtype=np.uint8),
        }
        bounds = np.unique(np.concatenate([[0], np.flatnonzero(rows["terminal"]) + 1, [n]]))
        for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            if self.add_count == 0 or self.store["terminal"][(self.add_count - 1) % self.capacity] == 1:
                self._store_zero_rows(self.stack_size - 1)
            self._store_logged({k: v[s:e] for k, v in rows.items()})

    def log_final(self) -> None:
        """`log_final_buffer`: log the store with add_count set to the cursor (skipped if nothing new)."""
        if self.add_count not in (0, self._count_at_last_log):
            self._log(saved_add_count=self.cursor)

    # --- internals ---

    def _store_zero_rows(self, count: int) -> None:
        zeros = {k: np.zeros((count, *v.shape[1:]), dtype=v.dtype) for k, v in self.store.items()}
        self._store_rows(zeros)  # no log check here: Dopamine checks only after real adds

    def _store_logged(self, rows: dict[str, np.ndarray]) -> None:
        """Store rows, logging whenever add_count reaches C-1 (mod C) right after an add."""
        n, i, cap = len(rows["action"]), 0, self.capacity
        while i < n:
            until_log = (cap - 1 - (self.add_count + 1) % cap) % cap + 1  # adds until add_count ≡ C-1
            take = min(n - i, until_log)
            self._store_rows({k: v[i:i + take] for k, v in rows.items()})
            i += take
            if self.add_count % cap == cap - 1:
                self._log(saved_add_count=self.add_count)

    def _store_rows(self, rows: dict[str, np.ndarray]) -> None:
        n, cap = len(rows["action"]), self.capacity
        done = 0
        while done < n:
            at = (self.add_count + done) % cap
            take = min(n - done, cap - at)
            for name, value in rows.items():
                self.store[name][at:at + take] = value[done:done + take]
            done += take
        self.add_count += n

    def _log(self, saved_add_count: int) -> None:
        suffix = self.log_count
        for name in STORE:
            save_npy_gz(member_path(self.log_dir, name, suffix), self.store[name], self.compresslevel)
        save_npy_gz(member_path(self.log_dir, "add_count", suffix), np.array(saved_add_count, dtype=np.int64))
        invalid = [(self.cursor - self.update_horizon + i) % self.capacity
                   for i in range(self.stack_size + self.update_horizon)]
        save_npy_gz(member_path(self.log_dir, "invalid_range", suffix), np.array(invalid, dtype=np.int64))
        self.logged_suffixes.append(suffix)
        self.log_count += 1
        self._count_at_last_log = self.add_count
