"""The processes one evaluation runs in: this one alone, or those of `accelerate launch plan.py …`.

Under `accelerate launch` every process plays a disjoint share of the slot groups (jowa.evaluation.rollouts:
a group is up to `num_envs` games played together, with its own environment seed and actor), so each episode
is played exactly as a single process plays it; rank 0 merges the episodes in group order, logs them and
writes the one report.

A failure on one process ends them all: every collective is one all-gather of (kind, value) — "value" while
working, "failed" with the error from a process that raised, "closed" from one that finished — so a process
that fails or ends early meets the others at whatever collective they wait in, and they raise `RankFailed`
naming it instead of waiting forever.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch

log = logging.getLogger(__name__)
T = TypeVar("T")


class RankFailed(RuntimeError):
    """Another process of the evaluation failed or ended early; this one stops too."""


class Processes:
    """One process: every collective is the identity. `AccelerateProcesses` is the launched case."""

    rank: int = 0
    world: int = 1
    device: torch.device | None = None  # the launcher's device for this process (None: the caller's choice)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def owns(self, group: int) -> bool:
        """Slot groups round-robin by rank: deterministic, and disjoint across processes."""
        return group % self.world == self.rank

    def gather(self, value: T) -> list[T]:
        """Every process's `value`, in rank order, on every process."""
        return [value]

    def share(self, value: T) -> T:
        """Rank 0's `value` on every process."""
        return value

    def fail(self, error: BaseException) -> None:
        """Tell the other processes that this one failed with `error` (then it raises, and closes)."""

    def close(self, status: int = 0) -> None:
        """The end of this process's evaluation, with its exit status."""

    def any(self, flag: bool) -> bool:
        return any(self.gather(bool(flag)))

    def on_main(self, fn: Callable[[], T]) -> T | None:
        """`fn()` on rank 0 alone; its exception is raised on every process (so none waits forever)."""
        result: Any = None
        error: BaseException | None = None
        if self.main:
            try:
                result = fn()
            except Exception as caught:  # shared below, re-raised everywhere
                error = caught
        error = self.share(error)
        if error is not None:
            raise error
        return result if self.main else None


class AccelerateProcesses(Processes):
    """The processes of `accelerate launch` (accelerate's PartialState: rank, device, object collectives)."""

    def __init__(self, state) -> None:
        self.state = state
        self.rank, self.world, self.device = state.process_index, state.num_processes, state.device
        self.ended = False  # a failure was exchanged: no further collective would be met

    def _exchange(self, kind: str, value: Any) -> list[tuple[str, Any]]:
        """Every process's (kind, value), in rank order; raises RankFailed where another failed or ended."""
        from accelerate.utils import gather_object

        messages = gather_object([(kind, value)])  # accelerate flattens one level: a list of one per process
        if kind != "value":
            self.ended = True
            return messages
        others = [(rank, k, v) for rank, (k, v) in enumerate(messages) if k != "value"]
        if others:
            self.ended = True
            raise RankFailed("; ".join(f"process {rank} failed: {v}" if k == "failed"
                                       else f"process {rank} ended early (exit status {v})" for rank, k, v in others))
        return messages

    def gather(self, value: T) -> list[T]:
        return [v for _, v in self._exchange("value", value)]

    def share(self, value: T) -> T:
        return self._exchange("value", value if self.main else None)[0][1]

    def fail(self, error: BaseException) -> None:
        if not self.ended:
            self._exchange("failed", f"{type(error).__name__}: {error}")

    def close(self, status: int = 0) -> None:
        if not self.ended:
            self._exchange("closed", status)  # the others wait here too, unless one ended early
        self.state.destroy_process_group()  # torch warns at exit about a group left open


def launched_processes() -> Processes:
    """The processes of `accelerate launch` when there are several, else this process alone."""
    try:
        from accelerate import PartialState
    except ImportError as error:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise RuntimeError(f"a multi-process launch needs accelerate ({error}); pip install accelerate") from error
        return Processes()
    # Without a GPU, accelerate forms a process group of CPU processes only when asked to (cpu=True); else
    # every process of `accelerate launch --multi_gpu` would run the whole evaluation alone.
    state = PartialState(cpu=not torch.cuda.is_available())
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if state.num_processes != launched:
        raise RuntimeError(f"{launched} processes launched (WORLD_SIZE) but accelerate sees {state.num_processes}")
    return AccelerateProcesses(state) if state.num_processes > 1 else Processes()


def warn_idle(processes: Processes, groups: int, num_envs: int) -> None:
    """A game's episodes all play in one slot group, so processes beyond the groups have nothing to do."""
    if processes.main and groups < processes.world:
        log.warning("%d slot group(s) for %d processes: %d process(es) idle; use --envs below the number of games "
                    "to split games across processes (--envs %d now)", groups, processes.world,
                    processes.world - groups, num_envs)
