"""Frames → observation tokens with a frame encoder, batched across episodes (no grad; bf16 on GPU).

An encoder is any callable `encode(frames: uint8 tensor [n, 84, 84]) -> int tensor [n, 36]`. It comes
from `load_encoder(spec)`:
- a tokenizer checkpoint directory (holding `model.safetensors`): `jowa.tokenizer.Tokenizer`'s
  `encode_tokens`; its identity is the sha256 of `model.safetensors`;
- `"patch-quantizer"`: a fixed, non-learned 6×6-patch quantizer (mean and spread of each 14×14 patch),
  handy to exercise the token pipeline before a tokenizer is trained;
- `"package.module:function"`: any importable encoder; its identity is that name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from jowa.data.episodes import Episode
from jowa.model_files import weights_identity

Encoder = Callable[[torch.Tensor], torch.Tensor]
TOKENS_PER_FRAME = 36
PATCH = 14  # 84 / 6


def patch_quantizer(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [n, 84, 84] → int64 [n, 36]: token = 32·(patch mean // 4) + min(31, patch std // 4)."""
    n = frames.shape[0]
    patches = frames.reshape(n, 6, PATCH, 6, PATCH).permute(0, 1, 3, 2, 4).reshape(n, 36, PATCH * PATCH).float()
    mean = patches.mean(-1)  # [n, 36] in [0, 255]
    std = patches.std(-1, correction=0)  # [n, 36] in [0, 127.5]
    return (mean.div(4).floor() * 32 + std.div(4).floor().clamp(max=31)).long()


def load_encoder(spec: str, device: str | torch.device = "cpu") -> tuple[Encoder, str]:
    """(encoder, identity) for a checkpoint directory, "patch-quantizer" or "package.module:function"."""
    if spec == "patch-quantizer":
        return patch_quantizer, "patch-quantizer"
    path = Path(spec)
    if path.is_dir():
        weights = path / "model.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"Tokenizer checkpoint {path} has no model.safetensors")
        from jowa.tokenizer import Tokenizer  # lazy: the data pipeline does not need the model otherwise

        tokenizer = Tokenizer.from_pretrained(path, map_location=device).eval()
        return tokenizer.encode_tokens, weights_identity(path)
    if ":" in spec:
        module, name = spec.split(":", 1)
        try:
            return getattr(importlib.import_module(module), name), spec
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"Cannot import encoder {spec!r}: {exc}") from exc
    raise ValueError(f"Encoder {spec!r} is not a checkpoint directory, 'patch-quantizer' or 'module:function'")


def encode_frames(encoder: Encoder, frames: np.ndarray, device: str | torch.device = "cpu") -> np.ndarray:
    """uint8 [n, 84, 84] → uint16 [n, 36], checked to be 36 tokens per frame within u16."""
    device = torch.device(device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    with torch.no_grad(), autocast:
        tokens = encoder(torch.from_numpy(frames).to(device))
    tokens = tokens.cpu().numpy()
    if tokens.shape != (len(frames), TOKENS_PER_FRAME):
        raise ValueError(f"encoder returned {tokens.shape} for {len(frames)} frames; expected [n, {TOKENS_PER_FRAME}]")
    if tokens.min(initial=0) < 0 or tokens.max(initial=0) > np.iinfo(np.uint16).max:
        raise ValueError("encoder returned tokens outside 0..65535")
    return tokens.astype(np.uint16)


def encode_episodes(
    encoder: Encoder,
    episodes: Iterable[Episode],
    *,
    batch_frames: int = 4096,
    device: str | torch.device = "cpu",
) -> Iterator[tuple[Episode, np.ndarray]]:
    """(episode, tokens u16[n, 36]) in input order; frames of consecutive episodes share encoder batches."""
    pending: list[Episode] = []
    size = 0

    def flush() -> Iterator[tuple[Episode, np.ndarray]]:
        frames = np.concatenate([e.frames for e in pending])  # [sum n, 84, 84]
        tokens = np.concatenate([encode_frames(encoder, frames[i:i + batch_frames], device)
                                 for i in range(0, len(frames), batch_frames)])
        bounds = np.cumsum([0] + [len(e) for e in pending])
        for e, a, b in zip(pending, bounds[:-1], bounds[1:]):
            yield e, tokens[a:b]

    for episode in episodes:
        pending.append(episode)
        size += len(episode)
        if size >= batch_frames:
            yield from flush()
            pending, size = [], 0
    if pending:
        yield from flush()
