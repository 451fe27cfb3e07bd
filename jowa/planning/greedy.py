"""Acting without planning: argmax of the masked Q at the current o^35 (docs/official_jowa.md §7.2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jowa.model.distributional import q_values
from jowa.model.world_model import WorldActionModel
from jowa.planning.planner import Decision, ImaginedPath, PlannerSettings, length_groups, search_inputs
from jowa.planning.tree import SearchNode, SearchTree, q_tuple


@dataclass
class Greedy:
    horizon: int = 0  # nothing is imagined: the whole window is real context

    def validate(self, max_blocks: int = 8) -> None:
        if self.horizon != 0:
            raise ValueError(f"the greedy planner imagines nothing: horizon must be 0, got {self.horizon}")

    def describe(self) -> str:
        return "greedy"

    @torch.no_grad()
    def decide(
        self, model: WorldActionModel, contexts: list[torch.Tensor], tasks: torch.Tensor,
        widths: torch.Tensor | None = None, trace: bool = False,
    ) -> Decision:
        """One pass per context length over the whole memory (up to max_blocks blocks); widths are ignored."""
        self.validate(model.config.max_blocks)
        device = model.atoms.device
        inputs = search_inputs(model, contexts, tasks, 0)
        tasks, valid, truncated = inputs.tasks, inputs.valid, inputs.contexts
        root_q = torch.empty(len(contexts), valid.shape[1], device=device)
        for group in length_groups(truncated):
            rows = torch.tensor(group, device=device)
            out = model(torch.stack([truncated[i] for i in group]), tasks[rows], with_target=False)
            root_q[rows] = q_values(out.logits_q[:, :, -1], model.atoms, valid[rows])  # the last o^35
        actions = root_q.argmax(dim=-1)
        if not trace:
            return Decision(actions, root_q)
        nan = float("nan")
        trees = [SearchTree(int(actions[e]), "greedy", [SearchNode(0, -1, 0, -1, 0, nan, nan, q_tuple(q.tolist()))])
                 for e, q in enumerate(root_q)]
        paths = [ImaginedPath([], [], torch.zeros(0, 36, dtype=torch.long)) for _ in contexts]
        return Decision(actions, root_q, trees, paths)


def build(settings: PlannerSettings) -> Greedy:
    return Greedy()
