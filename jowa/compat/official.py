"""Read official JOWA / tokenizer `.pt` state dicts and turn them into our checkpoint directories.

Official checkpoints are plain state dicts, possibly with `module.` (DDP) and `_orig_mod.`
(torch.compile) prefixes, `attn.mask` buffers (built without flash-attn) and `head_*.indices`
buffers. We derive the last two, so they are checked and dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from jowa.config import TokenizerConfig, WorldModelConfig, load_size
from jowa.model.layout import ACTION_HEAD, OBS_HEAD, Q_HEAD, full_window_positions

PREFIXES = ("module.", "_orig_mod.")
HEAD_KINDS = {"head_observations": OBS_HEAD, "head_rewards": ACTION_HEAD, "head_ends": ACTION_HEAD,
              "head_q": Q_HEAD, "head_q_target": Q_HEAD}


class OfficialCheckpointError(ValueError):
    """An official checkpoint does not have the layout or shapes we expect."""


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a `.pt` state dict safely (`weights_only=True`) and strip DDP / compile prefixes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Official checkpoint not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise OfficialCheckpointError(f"{path}: expected a flat state dict of tensors")
    return strip_prefixes(state)


def strip_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove any chain of `module.` / `_orig_mod.` prefixes from every key."""
    out = {}
    for key, value in state.items():
        while key.startswith(PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def world_model_state(state: dict[str, torch.Tensor], config: WorldModelConfig) -> dict[str, torch.Tensor]:
    """Drop `attn.mask` buffers and check-and-drop the `head_*.indices` buffers."""
    out = {}
    for key, value in state.items():
        if key.endswith(".attn.mask"):
            continue
        head, _, leaf = key.partition(".")
        if leaf == "indices" and head in HEAD_KINDS:
            expected = full_window_positions(HEAD_KINDS[head], config.tokens_per_block, config.max_blocks)
            if not torch.equal(value.long().cpu(), expected):
                raise OfficialCheckpointError(f"{key}: head positions differ from the official layout")
            continue
        out[key] = value
    return out


def infer_world_model_config(state: dict[str, torch.Tensor], size: str | None = None,
                             head_dim: int = 64) -> WorldModelConfig:
    """Rebuild the config from tensor shapes. Heads are not visible in shapes: taken from `size`
    if given, else embed_dim // head_dim (64 in every official size)."""
    try:
        embed_dim = state["pos_emb.weight"].shape[1]
        base = load_size(size).world_model if size else WorldModelConfig()
        q_first = state["head_q.head_module.params.0"]
        num_layers = len({k.split(".")[2] for k in state if k.startswith("transformer.blocks.")})
        fields: dict[str, Any] = dict(
            obs_vocab_size=state["embedder.embedding_tables.1.weight"].shape[0],
            act_vocab_size=state["embedder.embedding_tables.0.weight"].shape[0],
            max_tasks=state["task_emb.embedding_tables.0.weight"].shape[0],
            num_layers=num_layers, embed_dim=embed_dim,
            num_heads=base.num_heads if size else embed_dim // head_dim,
            q_mlp_dim=q_first.shape[1], num_q=q_first.shape[0],
        )
    except KeyError as missing:
        raise OfficialCheckpointError(f"not a JOWA model state dict: missing {missing}") from None
    if state["pos_emb.weight"].shape[0] != base.max_tokens:
        raise OfficialCheckpointError(f"position table has {state['pos_emb.weight'].shape[0]} rows, expected {base.max_tokens}")
    return WorldModelConfig(**{**base.__dict__, **fields})


def infer_tokenizer_config(state: dict[str, torch.Tensor]) -> TokenizerConfig:
    """Rebuild the tokenizer config from tensor shapes (LPIPS keys are ignored)."""
    try:
        vocab_size, embed_dim = state["embedding.weight"].shape
        ch = state["encoder.conv_in.weight"].shape[0]
        levels = sorted({int(k.split(".")[2]) for k in state if k.startswith("encoder.down.")})
        ch_mult = tuple(state[f"encoder.down.{i}.block.0.conv2.weight"].shape[0] // ch for i in levels)
        num_res_blocks = len({k.split(".")[4] for k in state if k.startswith("encoder.down.0.block.")})
        resolutions = [84] + [84 // 7 // 2 ** (i - 1) for i in levels[1:]]  # 84 -> /7 -> /2 ...
        attn = tuple(sorted({resolutions[i] for i in levels if f"encoder.down.{i}.attn.0.q.weight" in state}))
        config = TokenizerConfig(
            vocab_size=vocab_size, embed_dim=embed_dim, z_channels=state["encoder.conv_out.weight"].shape[0],
            ch=ch, ch_mult=ch_mult, num_res_blocks=num_res_blocks, attn_resolutions=attn,
            in_channels=state["encoder.conv_in.weight"].shape[1], out_ch=state["decoder.conv_out.weight"].shape[0],
            decoder_up_attention=any(k.startswith("decoder.up.") and ".attn." in k for k in state),
        )
    except KeyError as missing:
        raise OfficialCheckpointError(f"not a tokenizer state dict: missing {missing}") from None
    return config


def tokenizer_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the frozen LPIPS weights that released tokenizer checkpoints carry."""
    return {k: v for k, v in state.items() if not k.startswith("lpips.")}


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """`load_state_dict(strict=True)` with one clear message listing missing, unexpected and mis-shaped keys."""
    own = module.state_dict()
    problems = [f"missing {k}" for k in own if k not in state]
    problems += [f"unexpected {k}" for k in state if k not in own]
    problems += [f"shape of {k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                 for k in own if k in state and state[k].shape != own[k].shape]
    if problems:
        shown = "; ".join(problems[:8]) + (f"; … {len(problems) - 8} more" if len(problems) > 8 else "")
        raise OfficialCheckpointError(f"{source} does not match the model: {shown}")
    module.load_state_dict(state, strict=True)

