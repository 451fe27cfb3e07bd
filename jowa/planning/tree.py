"""What a planner considered for one decision, as plain values: a tree of imagined nodes.

Planner-agnostic on purpose: beam search fills it from its trace (`beam_search.search_tree`); another
planner (greedy, MCTS) fills the same fields, and the viewer and reports only read this record.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SearchNode:
    """One imagined step: `action` taken at node `parent` led here."""

    id: int  # root = 0
    parent: int  # -1 for the root
    depth: int  # root = 0
    action: int  # full-set action taken at the parent (-1 for the root)
    reward_sign: int  # predicted reward sign in {-1, 0, 1} (0 for the root)
    reward_prob: float  # probability of that sign (nan where the planner does not say)
    end_prob: float  # predicted probability that the episode ended here (nan where unknown)
    q: tuple[float | None, ...]  # [18] expected Q per full-set action at this node; None = invalid action
    score: float | None = None  # the planner's value of the node (beam search: return so far + γ^d max Q)
    kept: bool = True  # still in the search after its depth (beam search: in the beam)


@dataclass
class SearchTree:
    chosen_action: int  # what the planner decided at the root
    planner: str  # e.g. "beam search K=2 H=2", "greedy"
    nodes: list[SearchNode] = field(default_factory=list)  # root first, then by depth in creation order

    @property
    def root(self) -> SearchNode:
        return self.nodes[0]

    def children(self, node_id: int) -> list[SearchNode]:
        return [n for n in self.nodes if n.parent == node_id]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (no NaN: unknown probabilities become null)."""
        def clean(value: Any) -> Any:
            return None if isinstance(value, float) and not math.isfinite(value) else value

        nodes = [{k: (list(map(clean, v)) if k == "q" else clean(v)) for k, v in asdict(n).items()} for n in self.nodes]
        return {"chosen_action": self.chosen_action, "planner": self.planner, "nodes": nodes}


def q_tuple(q: list[float]) -> tuple[float | None, ...]:
    """Masked Q values (invalid actions at -inf) as a tuple with None for the invalid ones."""
    return tuple(float(v) if math.isfinite(v) else None for v in q)
