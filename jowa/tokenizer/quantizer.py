"""Vector quantisation (docs/official_jowa.md §2.3): pure functions of tensors, plus the codebook module.

Tokens are the argmin over codebook entries of ‖z‖² + ‖e‖² − 2 z·e, summed in exactly that order
(float32) like the official code, ties going to the lowest index; positions are numbered row-major
over the (h, w) latent grid. No EMA, no dead-code restarts, no normalisation.
"""

from __future__ import annotations

import torch
from torch import nn


def squared_distances(z_flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """‖z‖² + ‖e‖² − 2 z·e in float32, also under autocast.  z_flat [N, E], codebook [K, E] → [N, K].

    A bf16 matmul here (autocast on GPU) would pick other tokens than the fp32 search of tokenizing and
    of the official code; the search is cheap next to the encoder, so it always runs in fp32."""
    with torch.autocast(z_flat.device.type, enabled=False):
        z_flat, codebook = z_flat.float(), codebook.float()
        return (
            torch.sum(z_flat**2, dim=1, keepdim=True)
            + torch.sum(codebook**2, dim=1)
            - 2 * torch.matmul(z_flat, codebook.t())
        )


def flatten_latents(z: torch.Tensor) -> torch.Tensor:
    """[B, E, h, w] → [B·h·w, E], positions row-major over (h, w)."""
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def nearest_tokens(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Token of each latent position.  z [B, E, h, w], codebook [K, E] → [B, h·w] int64."""
    distances = squared_distances(flatten_latents(z), codebook)  # [B·h·w, K]
    return distances.argmin(dim=-1).reshape(z.shape[0], -1)  # argmin: first minimum wins ties


def distance_gap(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Second-smallest minus smallest squared distance per position (tie risk).  → [B, h·w]."""
    distances = squared_distances(flatten_latents(z), codebook)  # [B·h·w, K]
    two = distances.topk(2, dim=-1, largest=False).values  # [B·h·w, 2]
    return (two[:, 1] - two[:, 0]).reshape(z.shape[0], -1)


def embed_tokens(tokens: torch.Tensor, codebook: torch.Tensor, side: int) -> torch.Tensor:
    """Codebook vectors laid out as a latent grid.  tokens [..., side²] → [..., E, side, side]."""
    vectors = codebook[tokens]  # [..., side², E]
    grid = vectors.reshape(*tokens.shape[:-1], side, side, codebook.shape[1])  # [..., h, w, E]
    return grid.movedim(-1, -3).contiguous()


def quantize(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(z_q [B, E, h, w], tokens [B, h·w]) for z [B, E, h, w]; h must equal w."""
    tokens = nearest_tokens(z, codebook)
    return embed_tokens(tokens, codebook, z.shape[-1]), tokens


def straight_through(z: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """z + sg(z_q − z): the value of z_q with the gradient of z (official decoder input in training)."""
    return z + (z_q - z).detach()


def commitment_loss(z: torch.Tensor, z_q: torch.Tensor, beta: float) -> torch.Tensor:
    """Codebook term mean((sg(z) − z_q)²) plus β·mean((z − sg(z_q))²), means over all elements."""
    codebook_term = (z.detach() - z_q).pow(2).mean()
    commitment_term = (z - z_q.detach()).pow(2).mean()
    return codebook_term + beta * commitment_term


class Codebook(nn.Embedding):
    """The `vocab_size × embed_dim` codebook; its weight is `embedding.weight` in official checkpoints."""

    def __init__(self, vocab_size: int, embed_dim: int) -> None:
        super().__init__(vocab_size, embed_dim)  # calls reset_parameters below

    def reset_parameters(self) -> None:
        # Official init: uniform(−1/K, 1/K) instead of nn.Embedding's N(0, 1).
        bound = 1.0 / self.num_embeddings
        nn.init.uniform_(self.weight, -bound, bound)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [B, E, h, w] → (z_q [B, E, h, w], tokens [B, h·w])."""
        return quantize(z, self.weight)

    def lookup(self, tokens: torch.Tensor, side: int) -> torch.Tensor:
        """tokens [..., side²] → z_q [..., E, side, side]."""
        return embed_tokens(tokens, self.weight, side)
