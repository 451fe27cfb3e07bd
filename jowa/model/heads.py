"""Output heads: per-position MLP heads and the vectorised C51 Q ensemble (official storage layout)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MLPHead(nn.Module):
    """Linear(d, d) → ReLU → Linear(d, out), applied to the positions the caller selected."""

    def __init__(self, embed_dim: int, output_dim: int) -> None:
        super().__init__()
        self.head_module = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, n, d] -> [B, n, out]
        if x.shape[1] == 0 and not torch.is_grad_enabled():  # no position of this kind (cached one-token passes)
            return x.new_empty(*x.shape[:-1], self.head_module[-1].out_features)
        return self.head_module(x)


class QEnsemble(nn.Module):
    """`num_q` TD-MPC2-style MLPs evaluated as one batched computation.

    Each member: Linear → Dropout → LayerNorm → Mish → Linear → LayerNorm → Mish → Linear(18·51).
    Parameters are stacked over members in `params.{0..9}` exactly as the official
    `combine_state_for_ensemble` layout (W1, b1, LN1 w, LN1 b, W2, b2, LN2 w, LN2 b, W3, b3).
    """

    def __init__(self, num_members: int, input_dim: int, hidden_dim: int, output_dim: int, dropout: float) -> None:
        super().__init__()
        shapes = [
            (hidden_dim, input_dim), (hidden_dim,), (hidden_dim,), (hidden_dim,),
            (hidden_dim, hidden_dim), (hidden_dim,), (hidden_dim,), (hidden_dim,),
            (output_dim, hidden_dim), (output_dim,),
        ]
        self.params = nn.ParameterList([nn.Parameter(torch.empty(num_members, *shape)) for shape in shapes])
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    @property
    def num_members(self) -> int:
        return self.params[0].shape[0]

    def reset_parameters(self) -> None:
        """PyTorch's default Linear/LayerNorm init per member (the official init never reaches the ensemble)."""
        with torch.no_grad():
            for weight, bias in ((0, 1), (4, 5), (8, 9)):
                for member in range(self.num_members):
                    nn.init.kaiming_uniform_(self.params[weight][member], a=math.sqrt(5))
                bound = 1.0 / math.sqrt(self.params[weight].shape[-1])
                self.params[bias].uniform_(-bound, bound)
            for ln_weight, ln_bias in ((2, 3), (6, 7)):
                self.params[ln_weight].fill_(1.0)
                self.params[ln_bias].zero_()

    def _linear(self, x: torch.Tensor, weight: int, bias: int) -> torch.Tensor:
        # [M, N, i] @ [M, i, o] + [M, 1, o]: all members in one batched matmul.
        return torch.baddbmm(self.params[bias].unsqueeze(1), x, self.params[weight].transpose(1, 2))

    def _norm_mish(self, x: torch.Tensor, weight: int, bias: int) -> torch.Tensor:
        normed = F.layer_norm(x, x.shape[-1:])
        return F.mish(normed * self.params[weight].unsqueeze(1) + self.params[bias].unsqueeze(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, n, d] -> [num_q, B, n, 18·51] logits, action-major (index = a·51 + atom)."""
        batch, length, dim = x.shape
        if length == 0 and not torch.is_grad_enabled():  # no Q position in this pass: nothing to compute
            return x.new_empty(self.num_members, batch, 0, self.params[9].shape[-1])
        h = x.reshape(1, batch * length, dim).expand(self.num_members, -1, -1)
        h = self._norm_mish(self.dropout(self._linear(h, 0, 1)), 2, 3)
        h = self._norm_mish(self._linear(h, 4, 5), 6, 7)
        return self._linear(h, 8, 9).view(self.num_members, batch, length, self.params[9].shape[-1])


class QHead(nn.Module):
    """Holds the ensemble under `head_module` so state-dict keys match the official `head_q.head_module.*`."""

    def __init__(self, num_members: int, input_dim: int, hidden_dim: int, output_dim: int, dropout: float) -> None:
        super().__init__()
        self.head_module = QEnsemble(num_members, input_dim, hidden_dim, output_dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head_module(x)
