"""The FIFO buffer of imagined segments (docs/official_jowa.md §9.1: capacity 10 × the dataset's segments), as tokens on CPU."""

from __future__ import annotations

import torch

from jowa.data.batch import Batch


class SegmentBuffer:
    """Ring buffer of L-step token segments; the oldest are overwritten first. Sampling is uniform,
    without replacement while the buffer holds enough segments."""

    def __init__(self, capacity: int, segment_length: int, tokens_per_frame: int = 36, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"buffer capacity must be >= 1, got {capacity}")
        self.capacity, self.size, self.cursor = capacity, 0, 0
        shape = (capacity, segment_length)
        self.observations = torch.zeros(*shape, tokens_per_frame, dtype=torch.int16)  # vocabularies < 32768
        self.actions = torch.zeros(shape, dtype=torch.uint8)
        self.rewards = torch.zeros(shape, dtype=torch.float32)
        self.ends = torch.zeros(shape, dtype=torch.uint8)
        self.mask_padding = torch.zeros(shape, dtype=torch.bool)
        self.tasks = torch.zeros(capacity, dtype=torch.int64)
        self.generator = torch.Generator().manual_seed(seed)
        self.added = 0

    def __len__(self) -> int:
        return self.size

    def add(self, batch: Batch) -> None:
        if batch.observations.numel() and int(batch.observations.max()) > torch.iinfo(torch.int16).max:
            raise ValueError("observation tokens exceed the buffer's int16 storage")
        count = batch.batch_size
        rows = (self.cursor + torch.arange(count)) % self.capacity
        cpu = batch.to("cpu")
        self.observations[rows] = cpu.observations.to(torch.int16)
        self.actions[rows] = cpu.actions.to(torch.uint8)
        self.rewards[rows] = cpu.rewards.float()
        self.ends[rows] = cpu.ends.to(torch.uint8)
        self.mask_padding[rows] = cpu.mask_padding
        self.tasks[rows] = cpu.tasks
        self.cursor = (self.cursor + count) % self.capacity
        self.size = min(self.size + count, self.capacity)
        self.added += count

    def sample(self, count: int, device: torch.device | str = "cpu") -> Batch:
        if not self.size:
            raise RuntimeError("sampling from an empty imagination buffer")
        if count <= self.size:
            rows = torch.randperm(self.size, generator=self.generator)[:count]
        else:
            rows = torch.randint(self.size, (count,), generator=self.generator)
        return Batch(
            observations=self.observations[rows].long(), actions=self.actions[rows].long(),
            rewards=self.rewards[rows], ends=self.ends[rows].long(), mask_padding=self.mask_padding[rows],
            tasks=self.tasks[rows],
        ).to(device)
