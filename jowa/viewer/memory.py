"""The token history a viewer session feeds the model: frames' 36 tokens and the actions between them."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class TokenMemory:
    """The last `capacity` blocks: frames[i] is followed by actions[i] (the newest frame has no action yet)."""

    capacity: int
    frames: list[torch.Tensor] = field(default_factory=list)  # each [36] int64
    actions: list[int] = field(default_factory=list)  # len(frames) − 1

    def push(self, action: int | None, tokens: torch.Tensor) -> None:
        """Append the action taken at the newest frame (None for the first frame) and the frame it led to."""
        if (action is None) != (not self.frames):
            raise ValueError("an action is needed after the first frame, and only then")
        if action is not None:
            self.actions.append(int(action))
        self.frames.append(tokens.long())
        while len(self.frames) > self.capacity:
            self.frames.pop(0)
            self.actions.pop(0)

    def context(self) -> torch.Tensor:
        """[37n − 1] tokens o^0..o^35, a, …, ending with the newest frame's o^35 (the planner's layout)."""
        parts = []
        for tokens, action in zip(self.frames, self.actions):
            parts += [tokens, torch.tensor([action])]
        return torch.cat(parts + [self.frames[-1]])

    def copy(self, capacity: int | None = None) -> "TokenMemory":
        out = TokenMemory(capacity or self.capacity, list(self.frames), list(self.actions))
        while len(out.frames) > out.capacity:
            out.frames.pop(0)
            out.actions.pop(0)
        return out
