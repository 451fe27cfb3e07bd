"""C51 return distributions from the Q ensemble's logits (docs/official_jowa.md §4 "Combining into Q-values")."""

from __future__ import annotations

import torch


def atom_support(vmin: float, vmax: float, num_atoms: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """[num_atoms] float32 z_k, exactly `torch.linspace` as the official code."""
    return torch.linspace(vmin, vmax, num_atoms, device=device)


def member_probabilities(logits_q: torch.Tensor, num_atoms: int) -> torch.Tensor:
    """[M, ..., A·Z] action-major logits -> [M, ..., A, Z] per-member softmax over atoms."""
    return logits_q.unflatten(-1, (-1, num_atoms)).float().softmax(dim=-1)


def mean_distribution(logits_q: torch.Tensor, num_atoms: int) -> torch.Tensor:
    """[..., A, Z]: the members' probabilities averaged (not their logits); the acting/CQL form."""
    return member_probabilities(logits_q, num_atoms).mean(dim=0)


def weighted_distribution(logits_q: torch.Tensor, num_atoms: int) -> torch.Tensor:
    """[..., A, Z]: Σ_i (1/M)·softmax_i, the official TD form (bit-identical to the mean for M = 2)."""
    probs = member_probabilities(logits_q, num_atoms)
    return (probs * (1.0 / probs.shape[0])).sum(dim=0)


def expected_q(distribution: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """[..., A, Z] -> [..., A] Q(a) = Σ_k p_k(a) z_k."""
    return (distribution * support).sum(dim=-1)


def mask_invalid(q_values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Set Q of actions invalid in the game to -inf. valid: broadcastable bool [..., A]."""
    return q_values.masked_fill(~valid, float("-inf"))


def q_values(logits_q: torch.Tensor, support: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """[M, ..., A·Z] logits -> [..., A] expected Q under the member-averaged distribution, optionally masked."""
    q = expected_q(mean_distribution(logits_q, support.numel()), support)
    return q if valid is None else mask_invalid(q, valid)
