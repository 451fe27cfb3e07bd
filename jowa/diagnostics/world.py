"""World-model measures that a static background cannot flatter: next-frame token accuracy on the tokens
that change, beside a copy-the-last-frame baseline; reward-sign accuracy on the steps with a reward,
beside always predicting the most common class.

Predictions are teacher-forced, as in training: token k of frame t is predicted from frames < t and
tokens < k of frame t. Only frames t ≥ 1 of a segment count (frame 0 has no previous frame to copy).
"""

from __future__ import annotations

import math

import torch

from jowa.data.batch import Batch
from jowa.model.world_model import WorldActionModel, WorldModelOutput
from jowa.objective import interleave


@torch.no_grad()
def eval_forward(model: WorldActionModel, batch: Batch) -> WorldModelOutput:
    """One forward pass in eval mode (no dropout, no RNG draws), the training mode restored after."""
    was_training = model.training
    model.eval()
    try:
        return model(interleave(batch.observations, batch.actions), batch.tasks, with_target=True)
    finally:
        model.train(was_training)


def next_token_predictions(logits_observations: torch.Tensor, steps: int) -> torch.Tensor:
    """[B, T·K, V] logits → [B, T, K] argmax predictions aligned with the tokens they predict.

    Logit j predicts observation token j + 1 (flattened over steps), so shift by one; the very first
    token has no prediction and gets −1.
    """
    flat = logits_observations.argmax(dim=-1)  # [B, T·K]
    shifted = torch.cat([flat.new_full((flat.shape[0], 1), -1), flat[:, :-1]], dim=1)
    return shifted.unflatten(1, (steps, -1))


def next_token_cross_entropy(logits_observations: torch.Tensor, tokens: torch.Tensor,
                             mask_padding: torch.Tensor) -> float:
    """The training objective's next-token cross-entropy (nats) on the positions `token_measures` counts
    (frames t ≥ 1 of real steps): logits [B, T·K, V], tokens [B, T, K], mask_padding [B, T]."""
    flat = tokens.flatten(1)
    loss = torch.nn.functional.cross_entropy(logits_observations[:, :-1].transpose(1, 2).float(), flat[:, 1:],
                                             reduction="none")
    loss = torch.cat([loss.new_zeros(loss.shape[0], 1), loss], dim=1).unflatten(1, tokens.shape[1:])[:, 1:]
    valid = mask_padding[:, 1:, None].expand_as(loss)
    return float(loss[valid].mean()) if valid.any() else math.nan


def _ratio(hits: torch.Tensor, mask: torch.Tensor) -> float:
    total = int(mask.sum())
    return float((hits & mask).sum()) / total if total else math.nan


def token_measures(predicted: torch.Tensor, tokens: torch.Tensor, mask_padding: torch.Tensor) -> dict[str, float]:
    """predicted, tokens [B, T, K]; mask_padding [B, T] (a prefix of real steps) → accuracies on frames t ≥ 1.

    `changed_*` count only the positions where tokens[t] != tokens[t−1]; the copy baseline predicts
    tokens[t−1], so its changed-token accuracy is 0 by definition and only its overall accuracy says anything.
    """
    current, previous = tokens[:, 1:], tokens[:, :-1]  # [B, T−1, K]
    valid = mask_padding[:, 1:, None].expand_as(current)  # frame t real ⇒ frame t−1 real
    changed = valid & (current != previous)
    model_hit, copy_hit = predicted[:, 1:] == current, previous == current
    return {
        "token_accuracy": _ratio(model_hit, valid), "copy_token_accuracy": _ratio(copy_hit, valid),
        "changed_token_fraction": _ratio(changed, valid),
        "changed_token_accuracy": _ratio(model_hit, changed), "copy_changed_token_accuracy": _ratio(copy_hit, changed),
    }


def reward_measures(predicted: torch.Tensor, rewards: torch.Tensor, mask_padding: torch.Tensor) -> dict[str, float]:
    """predicted [B, T] reward classes (sign + 1), rewards [B, T] as stored, mask_padding [B, T].

    The majority baseline always predicts the most common class among these steps (usually "no reward",
    whose accuracy on the rewarded steps is then 0).
    """
    labels = (rewards.sign() + 1).long()
    rewarded = mask_padding & (labels != 1)
    majority = torch.bincount(labels[mask_padding], minlength=3).argmax() if mask_padding.any() else labels.new_tensor(1)
    model_hit, majority_hit = predicted == labels, labels == majority
    return {
        "reward_accuracy": _ratio(model_hit, mask_padding), "majority_reward_accuracy": _ratio(majority_hit, mask_padding),
        "rewarded_fraction": _ratio(rewarded, mask_padding),
        "rewarded_accuracy": _ratio(model_hit, rewarded), "majority_rewarded_accuracy": _ratio(majority_hit, rewarded),
    }


def world_measures(model: WorldActionModel, batch: Batch, outputs: WorldModelOutput | None = None) -> dict[str, float]:
    """Token and reward measures of `model` on `batch` (a forward pass unless `outputs` of it are given)."""
    outputs = eval_forward(model, batch) if outputs is None else outputs
    predicted = next_token_predictions(outputs.logits_observations, batch.num_steps)
    return {**token_measures(predicted, batch.observations, batch.mask_padding),
            "token_cross_entropy": next_token_cross_entropy(outputs.logits_observations, batch.observations,
                                                            batch.mask_padding),
            **reward_measures(outputs.logits_rewards.argmax(dim=-1), batch.rewards, batch.mask_padding)}
