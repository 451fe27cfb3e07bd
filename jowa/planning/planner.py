"""The planner seam: what the agent, the evaluation, the viewer and fine-tuning's imagination ask of a planner.

A planner is a small typed dataclass (its options) with one method, `decide`: given the agent's token
memories of E environments, return one action per environment and, when traced, what it considered (a
`SearchTree` for the viewer, the imagined path behind the decision for fine-tuning). Implementations:
`greedy.Greedy`, `beam_search.BeamSearch`, `mcts.MCTS`; `registry.PLANNERS` maps names to them.

The horizon limit lives here only (`check_horizon`, `check_context`): a planner keeps room for `horizon`
imagined blocks in the model's window, so it reads the last `max_blocks - horizon` blocks of a memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from jowa.model.world_model import WorldActionModel
from jowa.planning.tree import SearchTree


@dataclass
class ImaginedPath:
    """The imagined steps behind one decision, first = the chosen action at the real state."""

    actions: list[int]  # [h]
    rewards: list[float]  # [h] predicted reward signs in {-1, 0, 1}
    observations: torch.Tensor  # [h, 36] imagined observation tokens after each action


@dataclass
class Decision:
    actions: torch.Tensor  # [E] chosen full-set actions
    root_q: torch.Tensor  # [E, 18] masked Q at the root (invalid actions = -inf)
    trees: list[SearchTree] = field(default_factory=list)  # [E], only when traced
    paths: list[ImaginedPath] = field(default_factory=list)  # [E], only when traced
    detail: Any = None  # the planner's own record (beam search: its PlanResult), for callers that know it


@dataclass
class PlannerSettings:
    """What the command line and the evaluation config say about planning, for `registry.make_planner`."""

    horizon: int = 2  # H
    beam_width: int = 2  # K (beam search; MCTS's default simulation count K²(H−1)+K when simulations is None)
    simulations: int | None = None  # MCTS; None = the planner's default
    return_lambda: float = 1.0  # beam search: λ of its λ-return score (1 = official; beam_search.BeamSearch)


@runtime_checkable
class Planner(Protocol):
    horizon: int  # imagined blocks the planner needs room for (0: none)

    def describe(self) -> str:
        """A short label for reports and the viewer, e.g. "beam search K=2 H=2"."""
        ...

    def validate(self, max_blocks: int = 8) -> None:
        """Raise ValueError on options the model cannot run."""
        ...

    def decide(
        self, model: WorldActionModel, contexts: list[torch.Tensor], tasks: torch.Tensor,
        widths: torch.Tensor | None = None, trace: bool = False,
    ) -> Decision:
        """contexts: E token memories [37n − 1] ending at the current o^35; tasks [E]; widths [E]: each
        environment's K from the per-game table (beam search's beam width; None: the planner's own)."""
        ...


def check_horizon(horizon: int, max_blocks: int = 8, minimum: int = 0) -> None:
    """The one horizon check: H imagined blocks must leave at least one real block in the window."""
    if not minimum <= horizon < max_blocks:
        raise ValueError(f"horizon H must be in [{minimum}, {max_blocks - 1}], got {horizon}")


def check_context(context: int, horizon: int, max_blocks: int = 8, name: str = "") -> None:
    """An agent memory of `context` blocks plus the planner's horizon must fit the model's window."""
    if context < 1 or context + horizon > max_blocks:
        prefix = f"{name}: " if name else ""
        raise ValueError(f"{prefix}context {context} + horizon {horizon} must be in [1, {max_blocks}] blocks")


def context_blocks(context_length: int, tokens_per_block: int) -> int:
    """A context ends with o^35 of the current step: 37n − 1 tokens for n blocks."""
    if (context_length + 1) % tokens_per_block:
        raise ValueError(f"context of {context_length} tokens does not end at an observation's last token")
    return (context_length + 1) // tokens_per_block


def planning_contexts(model: WorldActionModel, contexts: list[torch.Tensor], horizon: int) -> list[torch.Tensor]:
    """Each memory's last min(max_blocks − H, n) blocks, on the model's device (the official root context)."""
    tpb = model.config.tokens_per_block
    keep_blocks = model.config.max_blocks - horizon
    device = model.atoms.device
    out = []
    for tokens in contexts:
        blocks = min(keep_blocks, context_blocks(tokens.numel(), tpb))
        out.append(tokens[tokens.numel() - (tpb * blocks - 1):].to(device))
    return out


@dataclass
class SearchInputs:
    """What every planner reads first, on the model's device."""

    tasks: torch.Tensor  # [E] task ids
    valid: torch.Tensor  # [E, 18] bool valid-action masks
    contexts: list[torch.Tensor]  # each memory's planning context (`planning_contexts`)


def search_inputs(model: WorldActionModel, contexts: list[torch.Tensor], tasks: torch.Tensor,
                  horizon: int) -> SearchInputs:
    tasks = tasks.to(model.atoms.device)
    return SearchInputs(tasks, model.valid_actions(tasks), planning_contexts(model, contexts, horizon))


def length_groups(contexts: list[torch.Tensor]) -> list[list[int]]:
    """Indices of the contexts of each length, shortest first: positions start at 0 in every row, so one
    batched pass takes contexts of one length only."""
    lengths = sorted({t.numel() for t in contexts})
    return [[i for i, t in enumerate(contexts) if t.numel() == n] for n in lengths]
