"""Where each kind of token sits in the 37-token block, and which positions each head reads (docs/official_jowa.md §4)."""

from __future__ import annotations

from functools import lru_cache

import torch

OBS_HEAD = "observations"  # offsets 0..34 and 36: predicts the next observation token
ACTION_HEAD = "actions"  # offset 36 (the action token): reward and termination heads
Q_HEAD = "q"  # offset 35 (the last observation token): the Q ensemble


def head_offsets(kind: str, tokens_per_block: int) -> list[int]:
    last_obs, action = tokens_per_block - 2, tokens_per_block - 1
    if kind == OBS_HEAD:
        return [k for k in range(tokens_per_block) if k != last_obs]
    if kind == ACTION_HEAD:
        return [action]
    if kind == Q_HEAD:
        return [last_obs]
    raise ValueError(f"Unknown head kind {kind!r}")


@lru_cache(maxsize=4096)
def _positions(kind: str, tokens_per_block: int, start: int, length: int, device: str) -> torch.Tensor:
    offsets = torch.tensor(head_offsets(kind, tokens_per_block))
    absolute = torch.arange(start, start + length)
    selected = torch.isin(absolute % tokens_per_block, offsets)
    return selected.nonzero().flatten().to(device)


def head_positions(kind: str, tokens_per_block: int, start: int, length: int, device: torch.device) -> torch.Tensor:
    """Indices inside a chunk of `length` tokens starting at absolute position `start` that `kind` reads."""
    return _positions(kind, tokens_per_block, start, length, str(device))


def full_window_positions(kind: str, tokens_per_block: int, max_blocks: int) -> torch.Tensor:
    """The official `head_*.indices` buffer: positions of a full window read by the head."""
    return _positions(kind, tokens_per_block, 0, tokens_per_block * max_blocks, "cpu").clone()


@lru_cache(maxsize=4096)
def _is_action(tokens_per_block: int, start: int, length: int, device: str) -> torch.Tensor:
    return (torch.arange(start, start + length) % tokens_per_block == tokens_per_block - 1).to(device)


def is_action_position(tokens_per_block: int, start: int, length: int, device: torch.device) -> torch.Tensor:
    """[n] bool: True where the chunk holds an action token."""
    return _is_action(tokens_per_block, start, length, str(device))
