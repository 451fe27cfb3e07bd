"""Stage-2 input: the data pipeline's segment stream (`jowa.data.segments`) as a resumable BatchSource."""

from __future__ import annotations

from typing import Any, Iterator

import torch

from jowa.data.batch import Batch
from jowa.data.segments import SegmentDataset, make_loader


class SegmentSource:
    """Batches of a `SegmentDataset` through its DataLoader; the state is the number of batches consumed.

    The DataLoader gets its own torch generator: creating its iterator would otherwise draw from the
    global RNG that the loop restores for dropout, and a resumed run would drift from a straight one.
    """

    def __init__(self, dataset: SegmentDataset, num_workers: int, seed: int, pin_memory: bool = False) -> None:
        self.dataset = dataset
        self.num_workers = num_workers
        self.seed = seed
        self.pin_memory = pin_memory
        self.consumed = 0
        self._iterator: Iterator[Batch] | None = None

    def __iter__(self) -> Iterator[Batch]:
        """Start the workers (call in the main thread, after `load_state_dict`)."""
        loader = make_loader(self.dataset, self.num_workers, self.pin_memory)
        loader.generator = torch.Generator().manual_seed(self.seed)
        self._iterator = iter(loader)
        return self

    def __next__(self) -> Batch:
        if self._iterator is None:
            iter(self)
        assert self._iterator is not None
        batch = next(self._iterator)
        self.consumed += 1
        return batch

    def state_dict(self) -> dict[str, Any]:
        return self.dataset.state_dict(self.consumed, self.num_workers)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self._iterator is not None:
            raise RuntimeError("SegmentSource.load_state_dict after its workers started")
        self.dataset.load_state_dict(state, self.num_workers)
        self.consumed = int(state["batches"])

    def close(self) -> None:
        """Stop the DataLoader workers (the iterator's finaliser shuts them down)."""
        self._iterator = None
