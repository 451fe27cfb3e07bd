"""The contract between data and the training loop, and a background prefetcher.

A `BatchSource` is an endless iterator of CPU batches (a `Batch`, or a frame tensor) that can say
where it is (`state_dict`) and go back there (`load_state_dict`, before `iter()` is called; `iter()`
is called once, in the main thread, and may start worker processes). It must draw randomness only from
its own generators, never from torch's global RNG: the loop restores that RNG for dropout, and a
source running in the prefetch thread would otherwise race with the model.

`Prefetcher` runs the source one or two batches ahead in a thread and hands out each batch together
with the source state *after* it, so a checkpoint records exactly the batches the model consumed.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Any, Iterator, Protocol

import torch


class BatchSource(Protocol):
    def __iter__(self) -> Iterator[Any]: ...
    def __next__(self) -> Any: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def to_device(batch: Any, device: torch.device) -> Any:
    """A tensor or a dataclass of tensors, moved (asynchronously from pinned memory on GPU)."""
    non_blocking = device.type == "cuda"
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if dataclasses.is_dataclass(batch):
        return type(batch)(**{f.name: to_device(getattr(batch, f.name), device) for f in dataclasses.fields(batch)})
    raise TypeError(f"Cannot move a {type(batch).__name__} to {device}")


def pin(batch: Any) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.pin_memory()
    if dataclasses.is_dataclass(batch):
        return type(batch)(**{f.name: pin(getattr(batch, f.name)) for f in dataclasses.fields(batch)})
    return batch


_DONE = object()


class Prefetcher:
    """Iterates (batch, source state after the batch), `depth` batches ahead of the consumer."""

    def __init__(self, source: BatchSource, depth: int = 2, pin_memory: bool = False) -> None:
        self.source = source
        self.iterator = iter(source)  # here, in the calling (main) thread: sources may start workers
        self.pin_memory = pin_memory
        self._queue: queue.Queue = queue.Queue(maxsize=max(depth, 1))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="jowa-prefetch", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    batch = next(self.iterator)
                except StopIteration:  # the consumer sees the end as StopIteration
                    break
                if self.pin_memory:
                    batch = pin(batch)
                item = (batch, self.source.state_dict())
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as error:  # handed to the consumer, raised there
            self._queue.put(error)
        finally:
            self._queue.put(_DONE)

    def __iter__(self) -> "Prefetcher":
        return self

    def __next__(self) -> tuple[Any, dict[str, Any]]:
        item = self._queue.get()
        if item is _DONE:
            raise StopIteration
        if isinstance(item, BaseException):
            raise RuntimeError(f"the batch source failed: {item}") from item
        return item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass
        close = getattr(self.source, "close", None)
        if close is not None:  # e.g. stop DataLoader worker processes
            close()
