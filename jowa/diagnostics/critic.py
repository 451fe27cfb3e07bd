"""Critic measures: the TD loss beside that of a uniform return distribution and beside its target's own
entropy (the lowest the cross-entropy can be), how much Q tells the valid actions apart, and whether Q
tracks the discounted returns actually observed until the episodes end."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from jowa.data.batch import Batch
from jowa.losses import c51_cross_entropy, td_prediction, td_rows, td_target
from jowa.model.distributional import q_values
from jowa.model.world_model import WorldActionModel, WorldModelOutput
from jowa.diagnostics.world import eval_forward


def uniform_td_loss(num_atoms: int) -> float:
    """The C51 cross-entropy of a uniform predicted distribution against any target: ln(Z)."""
    return math.log(num_atoms)


def returns_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """[n] rewards up to the end of an episode → [n] float64 G_t = Σ_k γ^k clip(r_{t+k}, −1, 1)."""
    clipped = np.clip(np.asarray(rewards, dtype=np.float64), -1.0, 1.0)
    out = np.empty_like(clipped)
    running = 0.0
    for t in range(len(clipped) - 1, -1, -1):
        running = clipped[t] + gamma * running
        out[t] = running
    return out


def q_spread(q: torch.Tensor, valid_actions: torch.Tensor, mask_padding: torch.Tensor) -> float:
    """q [B, T, A], valid_actions [B, A] bool, mask_padding [B, T] → mean over real steps of
    max − min of Q over the game's valid actions (0: the critic cannot tell actions apart)."""
    valid = valid_actions[:, None, :].expand_as(q)
    spread = q.masked_fill(~valid, -math.inf).amax(-1) - q.masked_fill(~valid, math.inf).amin(-1)  # [B, T]
    return float(spread[mask_padding].mean()) if mask_padding.any() else math.nan


def return_measures(q_taken: np.ndarray, returns: np.ndarray) -> dict[str, float]:
    """[N] Q(s, a_taken) and [N] observed returns-to-go → Pearson correlation (NaN when either is
    constant), mean Q − G, mean |Q − G| and the means themselves."""
    q, g = np.asarray(q_taken, np.float64), np.asarray(returns, np.float64)
    correlation = float(np.corrcoef(q, g)[0, 1]) if len(q) > 1 and q.std() > 0 and g.std() > 0 else math.nan
    return {"q_return_correlation": correlation, "q_return_mean_error": float((q - g).mean()),
            "q_return_mean_abs_error": float(np.abs(q - g).mean()), "q_mean": float(q.mean()),
            "return_mean": float(g.mean())}


def action_agreement(q: torch.Tensor, valid_actions: torch.Tensor, batch: Batch) -> dict[str, float]:
    """How often argmax Q over the valid actions is the data's action, beside the share of the data's most
    common action (what a critic that ignores the screen and always picks that action would score), and the
    share of the greedy policy's own most common action (1: it plays one action whatever the screen shows)."""
    greedy = _greedy(q, valid_actions)[batch.mask_padding]
    actions = batch.actions[batch.mask_padding]
    if actions.numel() == 0:
        return {"greedy_matches_data": math.nan, "most_common_action_share": math.nan, "greedy_top_action_share": math.nan}
    return {"greedy_matches_data": float((greedy == actions).float().mean()),
            "most_common_action_share": float(torch.bincount(actions).max()) / actions.numel(),
            "greedy_top_action_share": float(torch.bincount(greedy).max()) / greedy.numel()}


def _greedy(q: torch.Tensor, valid_actions: torch.Tensor) -> torch.Tensor:
    """q [B, T, A], valid_actions [B, A] → [B, T] argmax over the valid actions."""
    return q.masked_fill(~valid_actions[:, None, :], -math.inf).argmax(-1)


def swapped_actions(actions: torch.Tensor, valid_actions: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """[B, T] actions → each replaced by a uniformly drawn other valid action of its game (kept where the game
    has only one)."""
    weights = valid_actions[:, None, :].expand(*actions.shape, -1).float().clone()  # [B, T, A]
    weights.scatter_(-1, actions.unsqueeze(-1), 0.0)
    alone = weights.sum(-1) == 0
    weights[alone] = 1.0  # any draw; replaced by the action itself below
    drawn = torch.multinomial(weights.flatten(0, 1).cpu(), 1, generator=generator).view(actions.shape)
    return torch.where(alone, actions, drawn.to(actions.device))


@torch.no_grad()
def copy_measures(model: WorldActionModel, batch: Batch, q: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """Does the critic read the screen or copy the previous action? The action tokens of the context are the
    data's (the behaviour policy's), so a critic that names the action before it agrees with the data as often
    as the data repeat themselves, and in its own episodes plays whatever it played first.

    Over the real steps t ≥ 1: how often the data repeat their previous action, how often greedy names the
    data's previous action, and, with every action token of the context swapped for another valid action of
    the game (the observations kept), how often greedy names the swapped previous action and how often it keeps
    its own choice. A critic that reads the screen keeps its choice; one that copies follows the swap."""
    valid = model.valid_actions(batch.tasks)
    real = batch.mask_padding[:, 1:]
    if not real.any():
        return {k: math.nan for k in ("data_repeats_previous", "greedy_matches_previous",
                                      "greedy_follows_swap", "greedy_kept_under_swap")}
    greedy, actions = _greedy(q, valid), batch.actions
    swapped = swapped_actions(actions, valid, torch.Generator().manual_seed(seed))
    greedy_swapped = _greedy(q_values(eval_forward(model, replace(batch, actions=swapped)).logits_q, model.atoms), valid)

    def share(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a == b)[real].float().mean())

    return {"data_repeats_previous": share(actions[:, 1:], actions[:, :-1]),
            "greedy_matches_previous": share(greedy[:, 1:], actions[:, :-1]),
            "greedy_follows_swap": share(greedy_swapped[:, 1:], swapped[:, :-1]),
            "greedy_kept_under_swap": share(greedy_swapped[:, 1:], greedy[:, 1:])}


def critic_measures(
    model: WorldActionModel, batch: Batch, gamma: float, returns: torch.Tensor | None = None,
    outputs: WorldModelOutput | None = None, bootstrap: str = "max",
) -> dict[str, float]:
    """TD loss (eval mode: no dropout) beside ln(Z) and the target's entropy, the Q spread, and with `returns` [B, T] (the
    returns-to-go of each step; only read where mask_padding holds) the Q-vs-return measures."""
    outputs = eval_forward(model, batch) if outputs is None else outputs
    assert outputs.logits_q_target is not None
    support, valid = model.atoms, model.valid_actions(batch.tasks)
    rows = td_rows(batch.mask_padding, batch.ends)
    target = td_target(outputs.logits_q_target, batch.rewards, rows, valid, support, gamma, bootstrap,
                       outputs.logits_q, batch.actions)
    td = c51_cross_entropy(target.projected, td_prediction(outputs.logits_q, batch.actions, rows))
    q = q_values(outputs.logits_q, support)  # [B, T, A]
    # A TD loss near ln(Z) can mean "learns nothing" or "its target is itself near-uniform": from a uniform
    # start each hard target copy narrows the bootstrapped distribution by only γ (docs/diagnosis.md).
    measures = {"td_loss": float(td), "uniform_td_loss": uniform_td_loss(support.numel()),
                "td_target_entropy": float(c51_cross_entropy(target.projected, target.projected)),
                "q_spread": q_spread(q, valid, batch.mask_padding), **action_agreement(q, valid, batch),
                **copy_measures(model, batch, q)}
    if returns is not None:
        taken = q.gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)[batch.mask_padding]
        measures.update(return_measures(taken.cpu().numpy(), returns[batch.mask_padding].cpu().numpy()))
    return measures
