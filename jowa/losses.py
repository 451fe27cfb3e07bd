"""JOWA's objectives as pure functions of tensors (docs/official_jowa.md §5).

Shapes: B segments of T steps, K = 36 observation tokens per step, A = 18 actions, Z = 51 atoms,
M ensemble members.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from jowa.games import NUM_ACTIONS
from jowa.config import BOOTSTRAPS
from jowa.model.distributional import expected_q, mean_distribution, weighted_distribution

IGNORE_INDEX = -100


@dataclass
class LossTerms:
    """Every term of one objective evaluation; `total` is what is optimised."""

    total: torch.Tensor
    loss_obs: torch.Tensor
    loss_rewards: torch.Tensor
    loss_ends: torch.Tensor
    loss_td_error: torch.Tensor | None = None
    loss_cql_penalty: torch.Tensor | None = None
    q_value_of_negative_samples: torch.Tensor | None = None  # mean logsumexp_a Q over valid steps
    q_value_of_positive_samples: torch.Tensor | None = None  # mean Q(a_data) over valid steps

    def scalars(self) -> dict[str, float]:
        """Detached float values of the terms that are present (for logging)."""
        return {f.name: float(v.detach()) for f in fields(self) if (v := getattr(self, f.name)) is not None}


# --------------------------------------------------------------------------- world-model terms

def world_model_labels(
    obs_tokens: torch.Tensor, rewards: torch.Tensor, ends: torch.Tensor, mask_padding: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CE labels with padded steps ignored.

    obs_tokens [B, T, K], rewards/ends/mask_padding [B, T] -> obs labels [B·(T·K − 1)] (the first
    token of each row has no prediction), reward labels sign(r)+1 [B·T], end labels [B·T].
    """
    padded = ~mask_padding
    labels_obs = obs_tokens.masked_fill(padded.unsqueeze(-1), IGNORE_INDEX).flatten(1)[:, 1:]
    labels_rewards = (rewards.sign() + 1).masked_fill(padded, IGNORE_INDEX).long()
    labels_ends = ends.masked_fill(padded, IGNORE_INDEX)
    return labels_obs.reshape(-1), labels_rewards.reshape(-1), labels_ends.reshape(-1)


@functools.lru_cache(maxsize=16)
def reward_class_weights(rewarded_weight: float, device: torch.device) -> torch.Tensor | None:
    """CE class weights for the reward signs −1, 0, +1: `rewarded_weight` on the two rewarded classes (ours);
    None at 1, the official plain mean. Made once per device, not copied to it on every step."""
    if rewarded_weight == 1.0:
        return None
    return torch.tensor([rewarded_weight, 1.0, rewarded_weight], device=device)


def world_model_losses(
    logits_observations: torch.Tensor, logits_rewards: torch.Tensor, logits_ends: torch.Tensor,
    obs_tokens: torch.Tensor, rewards: torch.Tensor, ends: torch.Tensor, mask_padding: torch.Tensor,
    rewarded_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean cross-entropies (obs, reward, end) over non-padded targets; the reward CE a weighted mean with
    `rewarded_weight` on the rewarded steps (1 = official).

    logits_observations [B, T·K, V] (the last prediction has no label), logits_rewards [B, T, 3],
    logits_ends [B, T, 2].
    """
    labels_obs, labels_rewards, labels_ends = world_model_labels(obs_tokens, rewards, ends, mask_padding)
    loss_obs = F.cross_entropy(logits_observations[:, :-1].flatten(0, 1), labels_obs)
    loss_rewards = F.cross_entropy(logits_rewards.flatten(0, 1), labels_rewards,
                                   weight=reward_class_weights(rewarded_weight, logits_rewards.device))
    loss_ends = F.cross_entropy(logits_ends.flatten(0, 1), labels_ends)
    return loss_obs, loss_rewards, loss_ends


# --------------------------------------------------------------------------- C51 TD

def c51_project(target_atoms: torch.Tensor, weights: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Project a distribution on atoms `target_atoms` [N, Z] with probabilities `weights` [N, Z] onto `support` [Z].

    m_i = Σ_k clamp(1 − |clip(Tz_k) − z_i| / Δz, 0, 1) · w_k. The bounds stay tensors: reading them as
    Python floats would wait for the device on every step (same float32 values either way).
    """
    vmin, vmax = support[0], support[-1]
    delta = (vmax - vmin) / (support.numel() - 1)
    clipped = torch.minimum(torch.maximum(target_atoms, vmin), vmax)
    overlap = (1 - (clipped.unsqueeze(1) - support[None, :, None]).abs() / delta).clamp(0, 1)  # [N, Z_i, Z_k]
    return (overlap * weights.unsqueeze(1)).sum(dim=-1)


@dataclass
class TDRows:
    """The TD rows of a batch: non-terminal (t, t+1) pairs row-major, then terminal steps."""

    current: torch.Tensor  # [B, T] bool: valid and not the row's last valid step
    following: torch.Tensor  # [B, T] bool: valid and not the row's first valid step (aligned with `current`)
    terminal: torch.Tensor  # [B, T] bool: ends with padding zeroed


def td_rows(mask_padding: torch.Tensor, ends: torch.Tensor) -> TDRows:
    """Valid steps form a prefix of each row, so dropping the last valid step pairs t with t + 1."""
    steps = torch.arange(mask_padding.shape[1], device=mask_padding.device)
    first = torch.where(mask_padding, steps, mask_padding.shape[1]).amin(dim=1, keepdim=True)  # [B, 1]
    last = torch.where(mask_padding, steps, -1).amax(dim=1, keepdim=True)  # [B, 1]
    return TDRows(
        current=mask_padding & (steps != last),
        following=mask_padding & (steps != first),
        terminal=ends.bool() & mask_padding,
    )


def td_prediction(logits_q: torch.Tensor, actions: torch.Tensor, rows: TDRows) -> torch.Tensor:
    """[M, B, T, A·Z] online logits -> [N, Z] member-mixed distribution at the dataset action, per TD row."""
    num_atoms = logits_q.shape[-1] // NUM_ACTIONS
    online = weighted_distribution(logits_q, num_atoms)  # [B, T, A, Z]
    chosen = online.gather(2, actions[..., None, None].expand(-1, -1, 1, num_atoms)).squeeze(2)  # [B, T, Z]
    return torch.cat([chosen[rows.current], chosen[rows.terminal]])


@dataclass
class TDTarget:
    best_actions: torch.Tensor  # [B, T] argmax of the masked target Q (the bootstrap action a*)
    weights: torch.Tensor  # [N, Z] target probabilities at a* (uniform for terminal rows)
    atoms: torch.Tensor  # [N, Z] r + γ z (non-terminal rows) or r (terminal rows), unclipped
    projected: torch.Tensor  # [N, Z] the C51 target m


def _bootstrap(
    logits_q_target: torch.Tensor, valid_actions: torch.Tensor, support: torch.Tensor, bootstrap: str,
    logits_q: torch.Tensor | None, actions: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """a* [B, T] and the target head's distribution at a* [B, T, Z]. a* is the argmax over valid actions of the
    target head's Q ("max"), of the online head's Q `logits_q` ("double"), or the data's `actions` ("data")."""
    num_atoms = support.numel()
    target = weighted_distribution(logits_q_target, num_atoms)  # [B, T, A, Z]
    if bootstrap == "data":
        assert actions is not None, "bootstrap='data' needs the data's actions"
        best = actions[..., None]  # [B, T, 1]
    else:
        if bootstrap not in BOOTSTRAPS:
            raise ValueError(f"bootstrap must be one of {BOOTSTRAPS}, got {bootstrap!r}")
        assert bootstrap == "max" or logits_q is not None, "bootstrap='double' needs the online logits"
        chooser = target if bootstrap == "max" else weighted_distribution(logits_q.detach(), num_atoms)
        chooser_q = expected_q(chooser, support).masked_fill(~valid_actions[:, None, :], float("-inf"))  # [B, T, A]
        best = chooser_q.argmax(dim=-1, keepdim=True)  # [B, T, 1]
    best_dist = target.gather(2, best[..., None].expand(-1, -1, 1, num_atoms)).squeeze(2)  # [B, T, Z]
    return best.squeeze(-1), best_dist


@torch.no_grad()
def td_target(
    logits_q_target: torch.Tensor, rewards: torch.Tensor, rows: TDRows, valid_actions: torch.Tensor,
    support: torch.Tensor, gamma: float, bootstrap: str = "max", logits_q: torch.Tensor | None = None,
    actions: torch.Tensor | None = None,
) -> TDTarget:
    """Bootstrap from the target head's distribution at a* (see `_bootstrap`; "max" is official). The rows as the official code
    lists them (for diagnostics and parity; the training loss uses `c51_td_loss`, which never syncs)."""
    num_atoms = support.numel()
    best, best_dist = _bootstrap(logits_q_target, valid_actions, support, bootstrap, logits_q, actions)
    num_terminal = int(rows.terminal.sum())
    weights = torch.cat([best_dist[rows.following], best_dist.new_full((num_terminal, num_atoms), 1 / num_atoms)])
    atoms = torch.cat([
        rewards[rows.current][:, None] + gamma * support,
        rewards[rows.terminal][:, None].expand(-1, num_atoms),
    ])
    return TDTarget(best, weights, atoms, c51_project(atoms, weights, support))


@torch.no_grad()
def _dense_targets(
    logits_q_target: torch.Tensor, rewards: torch.Tensor, valid_actions: torch.Tensor, support: torch.Tensor,
    gamma: float, bootstrap: str, logits_q: torch.Tensor, actions: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The C51 targets at every position [B·T, Z], as a pair row (r + γz, next step's a* distribution) and
    as a terminal row (r, uniform). Valid steps are contiguous in a row, so a `current` step's partner in
    `following` is the next position: a shift replaces boolean-mask indexing (whose size needs the host)."""
    num_atoms = support.numel()
    _, best_dist = _bootstrap(logits_q_target, valid_actions, support, bootstrap, logits_q, actions)
    following = torch.cat([best_dist[:, 1:], best_dist[:, -1:]], dim=1).flatten(0, 1)  # last column: never a pair
    pair = c51_project((rewards[..., None] + gamma * support).flatten(0, 1), following, support)
    terminal_atoms = rewards[..., None].expand(-1, -1, num_atoms).flatten(0, 1)
    terminal = c51_project(terminal_atoms, torch.full_like(terminal_atoms, 1 / num_atoms), support)
    return pair, terminal


def c51_cross_entropy(projected: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    """Mean over rows of −Σ_i m_i log(p_i + 1e-8)."""
    return -(projected * torch.log(predicted + 1e-8)).sum(dim=-1).mean()


def c51_td_loss(
    logits_q: torch.Tensor, logits_q_target: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
    rows: TDRows, valid_actions: torch.Tensor, support: torch.Tensor, gamma: float, bootstrap: str = "max",
) -> torch.Tensor:
    """1-step distributional TD loss (docs/official_jowa.md §5.2): the mean over the official rows (pairs, then
    terminal steps) of the C51 cross-entropy, computed densely over [B, T] with masks so that the step has
    no host sync (the official row lists have data-dependent sizes; same rows, same values).

    logits_q / logits_q_target [M, B, T, A·Z]; actions [B, T]; rewards [B, T] as stored;
    valid_actions [B, A]; `bootstrap`: see `_bootstrap` ("max" is official).
    """
    pair, terminal = _dense_targets(logits_q_target, rewards, valid_actions, support, gamma, bootstrap, logits_q, actions)
    num_atoms = support.numel()
    online = weighted_distribution(logits_q, num_atoms)  # [B, T, A, Z]
    chosen = online.gather(2, actions[..., None, None].expand(-1, -1, 1, num_atoms)).squeeze(2)  # [B, T, Z]
    log_p = torch.log(chosen + 1e-8).flatten(0, 1)  # [B·T, Z]
    current, ends = rows.current.flatten(), rows.terminal.flatten()
    total = (torch.where(current, -(pair * log_p).sum(dim=-1), 0).sum()
             + torch.where(ends, -(terminal * log_p).sum(dim=-1), 0).sum())
    return total / (current.sum() + ends.sum())


# --------------------------------------------------------------------------- CQL

def cql_penalty(
    logits_q: torch.Tensor, actions: torch.Tensor, mask_padding: torch.Tensor, support: torch.Tensor,
    alpha: torch.Tensor | float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """α·(mean logsumexp_a Q − mean Q(a_data)) over valid steps; all 18 actions, unmasked (official).

    Returns (penalty, mean logsumexp term, mean data term).
    """
    q = expected_q(mean_distribution(logits_q, support.numel()), support)  # [B, T, A]
    count = mask_padding.sum()  # masked sums, not q[mask_padding]: no data-dependent shape, no host sync
    negative = torch.where(mask_padding, torch.logsumexp(q, dim=-1), 0).sum() / count
    positive = torch.where(mask_padding, q.gather(2, actions.unsqueeze(-1)).squeeze(-1), 0).sum() / count
    return alpha * (negative - positive), negative, positive


def cql_alpha(weight: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """exp(log α) in float32, as stored by the official code (0.1 -> 0.09999999403953552)."""
    return torch.tensor(math.log(weight), dtype=torch.float32, device=device).exp()


@functools.lru_cache(maxsize=64)
def cql_alpha_value(weight: float) -> float:
    """`cql_alpha` as a Python float (exact in float32), made once: no new device tensor on every step."""
    return float(cql_alpha(weight))


# --------------------------------------------------------------------------- totals

def stage1_total(loss_obs: torch.Tensor, loss_rewards: torch.Tensor, loss_ends: torch.Tensor) -> LossTerms:
    """World model only, weight 1 each."""
    return LossTerms(total=0 + loss_obs + loss_rewards + loss_ends, loss_obs=loss_obs, loss_rewards=loss_rewards,
                     loss_ends=loss_ends)


def stage2_total(
    loss_obs: torch.Tensor, loss_rewards: torch.Tensor, loss_ends: torch.Tensor, loss_td: torch.Tensor,
    cql: tuple[torch.Tensor, torch.Tensor, torch.Tensor], supervised_weight: float,
) -> LossTerms:
    """TD + CQL + supervised_weight × world-model losses, summed in the official order."""
    obs, rew, end = (supervised_weight * loss for loss in (loss_obs, loss_rewards, loss_ends))
    penalty, negative, positive = cql
    return LossTerms(
        total=0 + obs + rew + end + loss_td + penalty, loss_obs=obs, loss_rewards=rew, loss_ends=end,
        loss_td_error=loss_td, loss_cql_penalty=penalty,
        q_value_of_negative_samples=negative.detach(), q_value_of_positive_samples=positive.detach(),
    )
