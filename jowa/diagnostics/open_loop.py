"""Open-loop imagination: from a few real frames, the world model continues alone under the real actions.

Teacher-forced accuracy (`world.py`) hides compounding errors; here each imagined frame is fed back as
the next input, as in planning and in the viewer's dream. Per horizon h (1 = the first imagined frame)
we measure the accuracy on the tokens that change between consecutive real frames, beside copying the
last real context frame, and the reward-sign accuracy, with the measures of `world.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from jowa.diagnostics.world import reward_measures, token_measures
from jowa.model.world_model import WorldActionModel
from jowa.objective import interleave
from jowa.planning.imagination import imagine_step


@dataclass
class OpenLoop:
    """B real segments of T = context + H steps and what the model imagined after their first `context` frames."""

    context: int
    true_tokens: torch.Tensor  # [B, T, 36] tokens of the real frames
    model_tokens: torch.Tensor  # [B, H, 36] imagined tokens of frames context .. T−1
    rewards: torch.Tensor  # [B, T] real rewards (r_t follows action a_t at frame t)
    reward_signs: torch.Tensor  # [B, H] predicted signs of r_{context−1} .. r_{T−2}
    end_probs: torch.Tensor  # [B, H] predicted termination probabilities

    @property
    def horizon(self) -> int:
        return self.model_tokens.shape[1]


@torch.no_grad()
def imagine_open_loop(
    model: WorldActionModel, tokens: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, tasks: torch.Tensor,
    context: int,
) -> OpenLoop:
    """tokens [B, T, 36], actions [B, T], rewards [B, T], tasks [B]; imagines frames context .. T−1 (argmax decoding)."""
    steps = tokens.shape[1]
    if not 1 <= context < steps <= model.config.max_blocks:
        raise ValueError(f"need 1 <= context ({context}) < steps ({steps}) <= {model.config.max_blocks} blocks")
    device = model.atoms.device
    tokens, actions, tasks = tokens.to(device), actions.to(device), tasks.to(device)
    cache = model.empty_cache(len(tokens))
    model(interleave(tokens[:, :context], actions[:, :context])[:, :-1], tasks, cache=cache, with_target=False)
    valid = model.valid_actions(tasks)
    imagined, signs, ends = [], [], []
    for t in range(context - 1, steps - 1):  # action a_t leads to frame t + 1
        step = imagine_step(model, cache, actions[:, t], tasks, valid, with_probs=True)
        imagined.append(step.next_obs_tokens)
        signs.append(step.rewards)
        ends.append(step.end_probs)
    return OpenLoop(context, tokens.cpu(), torch.stack(imagined, 1).cpu(), rewards.float().cpu(),
                    torch.stack(signs, 1).cpu(), torch.stack(ends, 1).cpu())


def horizon_measures(loop: OpenLoop) -> list[dict[str, float]]:
    """One dict per horizon h = 1..H: token measures of frame context+h−1 against the real frame before it
    (`changed_token_accuracy` etc.), `context_copy_changed_accuracy` (copy the last real context frame:
    the baseline an open-loop model has to beat), and the reward-sign measures of its step."""
    c, truth = loop.context, loop.true_tokens
    mask = torch.ones(len(truth), 2, dtype=torch.bool)
    rows = []
    for h in range(1, loop.horizon + 1):
        t = c + h - 1  # the frame imagined at horizon h
        pair = truth[:, t - 1:t + 1]  # [B, 2, 36] real frame before it, real frame
        predicted = torch.stack([pair[:, 0], loop.model_tokens[:, h - 1]], dim=1)
        row = {"horizon": float(h), **token_measures(predicted, pair, mask)}
        changed = pair[:, 1] != pair[:, 0]
        copy_hit = truth[:, c - 1] == pair[:, 1]
        total = int(changed.sum())
        row["context_copy_changed_accuracy"] = float((copy_hit & changed).sum()) / total if total else float("nan")
        classes = (loop.reward_signs[:, h - 1:h] + 1).long()
        row.update(reward_measures(classes, loop.rewards[:, t - 1:t], mask[:, :1]))
        rows.append(row)
    return rows
