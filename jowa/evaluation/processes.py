"""The processes one evaluation runs in: this one alone, or those of `accelerate launch plan.py …`.

Under `accelerate launch` every process plays a disjoint share of the slot groups (jowa.evaluation.rollouts:
a group is up to `num_envs` games played together, with its own environment seed and actor), so each episode
is played exactly as a single process plays it; rank 0 merges the episodes in group order, logs them and
writes the one report.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch

log = logging.getLogger(__name__)
T = TypeVar("T")


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

    def close(self) -> None:
        pass

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

    def gather(self, value: T) -> list[T]:
        from accelerate.utils import gather_object

        return gather_object([value])  # accelerate flattens one level: a list of one per process

    def share(self, value: T) -> T:
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value], from_process=0)[0]

    def close(self) -> None:
        self.state.wait_for_everyone()
        self.state.destroy_process_group()  # torch warns at exit about a group left open


def launched_processes() -> Processes:
    """The processes of `accelerate launch` when there are several, else this process alone."""
    try:
        from accelerate import PartialState
    except ImportError as error:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise RuntimeError(f"a multi-process launch needs accelerate ({error}); pip install accelerate") from error
        return Processes()
    state = PartialState()
    return AccelerateProcesses(state) if state.num_processes > 1 else Processes()


def warn_idle(processes: Processes, groups: int, num_envs: int) -> None:
    """A game's episodes all play in one slot group, so processes beyond the groups have nothing to do."""
    if processes.main and groups < processes.world:
        log.warning("%d slot group(s) for %d processes: %d process(es) idle; use --envs below the number of games "
                    "to split games across processes (--envs %d now)", groups, processes.world,
                    processes.world - groups, num_envs)
