"""Planning on logged states: where the beam search and the greedy critic part ways, and why.

On held windows of real play, the agent's memory is the first `context` real steps; the step after it
is real too, so the one-step value the planner imagines for the data's action, r̂ + γ max Q(ŝ′), can be
set beside the same value read on the real next frame, r + γ max Q(s′). A planner that disagrees with
greedy because its imagined frames are valued differently from real ones shows here as a large gap,
before any episode is played.
"""

from __future__ import annotations

import math

import torch

from jowa.data.batch import Batch
from jowa.model.distributional import q_values
from jowa.model.world_model import WorldActionModel
from jowa.objective import interleave
from jowa.planning.beam_search import BeamSearch, plan


def _contexts(batch: Batch, rows: torch.Tensor, blocks: int) -> torch.Tensor:
    """[R, 37·blocks − 1] token memories: the first `blocks` real steps of each row, ending at o^35."""
    tokens = interleave(batch.observations[rows, :blocks], batch.actions[rows, :blocks])
    return tokens[:, :-1]


def _top_share(actions: torch.Tensor) -> float:
    return float(torch.bincount(actions).max()) / actions.numel()


@torch.no_grad()
def planning_measures(model: WorldActionModel, batch: Batch, context: int, beam_width: int = 2,
                      gamma: float = 0.99, return_lambda: float = 1.0) -> dict[str, float]:
    """The one-step beam search (K = beam_width, H = 1, `return_lambda` its score's λ: jowa.planning.beam_search)
    against greedy on each row of `batch` whose steps 0..context are real (the memory, then the real next
    frame). NaN measures when no row qualifies."""
    if not 1 <= context < min(batch.num_steps, model.config.max_blocks):
        raise ValueError(f"context must be in [1, {min(batch.num_steps, model.config.max_blocks) - 1}], got {context}")
    rows = torch.nonzero(batch.mask_padding[:, context] & (batch.ends[:, :context] == 0).all(dim=1)).squeeze(-1)
    if rows.numel() == 0:
        return {"plan_states": 0.0}
    tasks, valid = batch.tasks[rows], model.valid_actions(batch.tasks[rows])
    memories = _contexts(batch, rows, context)
    search = BeamSearch(beam_width=beam_width, horizon=1, return_lambda=return_lambda)
    result = plan(model, list(memories), tasks, search, trace=True)
    greedy = result.root_q.argmax(dim=-1)
    data_action = batch.actions[rows, context - 1]
    # The real next frame: the memory, the data's action, the next observation, read at its o^35.
    real_next = _contexts(batch, rows, context + 1)
    next_q = q_values(model(real_next, tasks, with_target=False).logits_q[:, :, -1], model.atoms, valid)
    real_reward = batch.rewards[rows, context - 1].sign()
    # Step context − 1 is not terminal (rows above), so its backup bootstraps from the next frame, as the TD
    # target does (jowa/losses.py: only a terminal step's own target drops the bootstrap).
    real_score = real_reward + gamma * next_q.max(dim=-1).values
    imagined, revalued, reward_hits = [], [], []
    for i, levels in enumerate(result.traces):
        level = levels[0]  # depth 1: the root's candidates
        root = result.root_q[i, level.actions]
        revalued.append((level.scores - root).mean())
        hit = level.actions == data_action[i]
        if hit.any():
            imagined.append(float(level.scores[hit][0] - real_score[i]))
            reward_hits.append(float(level.rewards[hit][0] == real_reward[i]))
    gaps = torch.tensor(imagined) if imagined else torch.full((1,), math.nan)
    return {
        "plan_states": float(rows.numel()),
        "plan_matches_greedy": float((result.actions == greedy).float().mean()),
        "plan_matches_data": float((result.actions == data_action).float().mean()),
        "greedy_matches_data_here": float((greedy == data_action).float().mean()),
        "plan_top_action_share": _top_share(result.actions),
        "greedy_top_action_share_here": _top_share(greedy),
        # S(a) − Q(s, a) over the candidates: how far one imagined step moves the critic's own estimate.
        "imagined_minus_root_q": float(torch.stack(revalued).mean()),
        # For the data's action (when a candidate): imagined one-step value − the same on the real next frame.
        "imagined_minus_real_value": float(gaps.mean()),
        "imagined_real_abs_gap": float(gaps.abs().mean()),
        "imagined_reward_sign_matches": float(sum(reward_hits) / len(reward_hits)) if reward_hits else math.nan,
        "root_q_gap_top2": float(_top2_gap(result.root_q)),
    }


def _top2_gap(root_q: torch.Tensor) -> float:
    """Mean difference between the best and second-best valid action's Q at the root (what a look-ahead
    must overturn to change greedy's choice)."""
    top = root_q.topk(2, dim=-1).values
    return float((top[:, 0] - top[:, 1]).mean())
