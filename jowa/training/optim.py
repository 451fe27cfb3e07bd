"""Optimizers and learning-rate schedules of both stages (docs/official_jowa.md §2.8, §6.1).

World-action model (official `configure_optimizer`), AdamW with three groups:
- "decay": weight decay on Linear weights of the backbone and the obs/reward/end heads;
- "no_decay": biases, LayerNorm weights/biases and every Embedding table (token, position, task);
- "critic": every parameter of the online Q ensemble (incl. biases and LayerNorm), decayed, own lr.
The target Q head has no gradients and belongs to no group.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from jowa.model.world_model import WorldActionModel

DECAY, NO_DECAY, CRITIC = "decay", "no_decay", "critic"


@dataclass(frozen=True)
class WorldLearningRates:
    world: float
    critic: float
    weight_decay: float


def classify_world_parameters(model: WorldActionModel) -> dict[str, list[str]]:
    """Parameter names of the model by group; raises on a parameter no rule covers."""
    groups: dict[str, list[str]] = {DECAY: [], NO_DECAY: [], CRITIC: []}
    seen: set[str] = set()
    for module_name, module in model.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            name = f"{module_name}.{param_name}" if module_name else param_name
            if name.startswith("head_q_target."):
                continue
            if name.startswith("head_q."):
                groups[CRITIC].append(name)
            elif isinstance(module, (nn.Linear, nn.Conv1d)) and param_name == "weight":
                groups[DECAY].append(name)
            elif isinstance(module, (nn.Linear, nn.Conv1d, nn.LayerNorm, nn.Embedding)):
                groups[NO_DECAY].append(name)
            else:
                raise ValueError(f"No weight-decay rule for parameter {name!r} ({type(module).__name__})")
            seen.add(name)
    expected = {n for n, _ in model.named_parameters() if not n.startswith("head_q_target.")}
    if seen != expected:
        raise ValueError(f"Parameters missed by the optimizer groups: {sorted(expected - seen)}")
    return groups


def world_param_groups(model: WorldActionModel, rates: WorldLearningRates, with_critic: bool) -> list[dict]:
    """AdamW param groups; without the critic the Q head is left out (it gets no gradients then)."""
    params = dict(model.named_parameters())
    names = classify_world_parameters(model)
    groups = [
        {"name": DECAY, "params": [params[n] for n in names[DECAY]], "lr": rates.world,
         "weight_decay": rates.weight_decay},
        {"name": NO_DECAY, "params": [params[n] for n in names[NO_DECAY]], "lr": rates.world, "weight_decay": 0.0},
    ]
    if with_critic:
        groups.append({"name": CRITIC, "params": [params[n] for n in names[CRITIC]], "lr": rates.critic,
                       "weight_decay": rates.weight_decay})
    return groups


def update_kwargs(params: list[nn.Parameter]) -> dict[str, bool]:
    """fused on CUDA (one kernel for the whole update, and it can skip a non-finite step on the device:
    `found_inf`); foreach elsewhere (one multi-tensor update per group, the CPU numerics we test against)."""
    params = list(params)
    if params and all(p.is_cuda for p in params):
        return {"fused": True}
    return {"foreach": True}


def _params(groups: list[dict]) -> list[nn.Parameter]:
    return [p for group in groups for p in group["params"]]


def make_adamw(groups: list[dict], betas: tuple[float, ...], eps: float) -> torch.optim.AdamW:
    """The model must already be on its device: the kind of update is chosen from where the parameters are."""
    return torch.optim.AdamW(groups, betas=(betas[0], betas[1]), eps=eps, **update_kwargs(_params(groups)))


def make_adam(params: list[nn.Parameter], lr: float) -> torch.optim.Adam:
    """The tokenizer's optimizer: Adam, default betas/eps, no weight decay."""
    return torch.optim.Adam(params, lr=lr, **update_kwargs(params))


def make_schedule(
    optimizer: torch.optim.Optimizer, name: str, warmup_steps: int, total_steps: int,
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """None for the official constant lr; otherwise a `transformers` scheduler over `total_steps`."""
    if name == "constant" and warmup_steps == 0:
        return None
    from transformers import get_scheduler  # imported only when asked for: it is slow to import

    return get_scheduler(name, optimizer, num_warmup_steps=warmup_steps, num_training_steps=max(total_steps, 1))
