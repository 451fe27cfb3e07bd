"""The acting agent: a token memory per environment, a planner (`planner.Planner`), and ε-random valid actions
(docs/official_jowa.md §7.1)."""

from __future__ import annotations

import torch

from jowa.model.world_model import WorldActionModel
from jowa.planning.planner import Planner


class Agent:
    """Acts for E environments at once (each with its own game, memory size and K, e.g. the beam width).

    Each step appends the 36 tokens of the new frame to an environment's memory (dropping its oldest
    block when the memory already holds `buffer_size` blocks), plans on that memory, and appends the
    chosen action token.
    """

    def __init__(
        self, model: WorldActionModel, tokenizer: torch.nn.Module, tasks: torch.Tensor, planner: Planner,
        buffer_sizes: torch.Tensor | int = 8, widths: torch.Tensor | None = None, epsilon: float = 0.001,
        generator: torch.Generator | None = None,
    ) -> None:
        planner.validate(model.config.max_blocks)
        self.model, self.tokenizer, self.planner = model, tokenizer, planner
        self.tasks = tasks.long()
        count = len(tasks)
        sizes = torch.full((count,), buffer_sizes) if isinstance(buffer_sizes, int) else buffer_sizes.long()
        if (sizes < 1).any() or (sizes > model.config.max_blocks).any():
            raise ValueError(f"buffer sizes must be in [1, {model.config.max_blocks}], got {sizes.tolist()}")
        self.buffer_sizes = sizes
        self.widths = widths  # [E] per-environment K for the planner (None: the planner's own)
        self.epsilon = epsilon
        self.generator = generator or torch.Generator().manual_seed(0)
        self.memory: list[torch.Tensor] = [torch.empty(0, dtype=torch.long) for _ in range(count)]

    def reset(self, indices: list[int] | None = None) -> None:
        """Forget the history of the given environments (all by default), e.g. when their episode ends."""
        for i in range(len(self.memory)) if indices is None else indices:
            self.memory[i] = torch.empty(0, dtype=torch.long)

    def observe(self, frame_tokens: torch.Tensor, indices: list[int]) -> None:
        """Append new frame tokens [len(indices), 36] to the memories of the environments `indices`."""
        tpb = self.model.config.tokens_per_block
        for i, tokens in zip(indices, frame_tokens.cpu()):
            memory = self.memory[i]
            if memory.numel() + tokens.numel() > tpb * int(self.buffer_sizes[i]):
                memory = memory[tpb:]
            self.memory[i] = torch.cat([memory, tokens])

    @torch.no_grad()
    def act(self, frames: torch.Tensor, indices: list[int] | None = None) -> torch.Tensor:
        """frames: uint8 [N, 84, 84] (or float [N, 1, 84, 84] in [0, 1]) of the environments `indices`
        (all E by default, N = E) -> full-set actions [N]."""
        indices = list(range(len(self.memory))) if indices is None else list(indices)
        if len(frames) != len(indices):
            raise ValueError(f"{len(frames)} frames for {len(indices)} environments")
        self.observe(self.tokenizer.encode_tokens(frames), indices)
        chosen = torch.tensor(indices)
        widths = None if self.widths is None else self.widths[chosen]
        contexts = [self.memory[i] for i in indices]
        actions = self.planner.decide(self.model, contexts, self.tasks[chosen], widths).actions.cpu()
        actions = self._explore(actions, self.tasks[chosen])
        for i, action in zip(indices, actions):
            self.memory[i] = torch.cat([self.memory[i], action.view(1)])
        return actions

    def _explore(self, actions: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
        """With probability ε per environment, a uniformly random valid action instead."""
        if self.epsilon <= 0:
            return actions
        draws = torch.rand(len(actions), generator=self.generator)
        valid = self.model.action_masks.cpu()[tasks].float()
        random_actions = torch.multinomial(valid, 1, generator=self.generator).squeeze(-1)
        return torch.where(draws < self.epsilon, random_actions, actions)
