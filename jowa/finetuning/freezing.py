"""Which parameters of the world-action model fine-tune (`train`):

- `all` (official): everything (the target Q head never trains; it is copied from the online one);
- `freeze_backbone`: the transformer blocks and final LayerNorm are frozen; embeddings (token, position,
  task) and every head train;
- `heads_and_task`: only the heads (observation, reward, end, Q) and the task-embedding tables train.
"""

from __future__ import annotations

from jowa.model.world_model import WorldActionModel

BACKBONE = ("transformer.",)
HEADS_AND_TASK = ("head_observations.", "head_rewards.", "head_ends.", "head_q.", "task_emb.")


def trains(name: str, mode: str) -> bool:
    if name.startswith("head_q_target."):
        return False
    if mode == "all":
        return True
    if mode == "freeze_backbone":
        return not name.startswith(BACKBONE)
    if mode == "heads_and_task":
        return name.startswith(HEADS_AND_TASK)
    raise ValueError(f"train mode {mode!r}: choose all, freeze_backbone or heads_and_task")


def apply_freezing(model: WorldActionModel, mode: str) -> dict[str, int]:
    """Set requires_grad by `mode`; returns trainable / frozen parameter counts."""
    counts = {"trainable": 0, "frozen": 0}
    for name, param in model.named_parameters():
        param.requires_grad_(trains(name, mode))
        if not name.startswith("head_q_target."):
            counts["trainable" if param.requires_grad else "frozen"] += param.numel()
    return counts
