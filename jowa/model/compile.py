"""`torch.compile` of the world model and the tokenizer, in place and opt-in (`engine.compile: off|on|auto`).

Each module is compiled with `nn.Module.compile()`, which replaces its call with the compiled one and leaves
the module tree alone: state-dict keys stay the official ones (no `_orig_mod.` prefix), checkpoints and
official imports are unchanged. The blocks of the transformer share one `Block.forward`, so dynamo traces
it once for all of them (parameters are graph inputs). Compiling costs tens of seconds before the first
step, so `auto` compiles only runs long enough to win that back.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

COMPILE_MODES: tuple[str, ...] = ("off", "on", "auto")
# `auto` compiles from this many steps of a stage on (None: never). On CPU the compiled step did not pay:
# 0.94x eager on tiny, 0.98x on 40M (fp32, batch 8, AMD EPYC Zen 3, 2 cores, benchmarks/train_step.py
# --compile), so auto leaves CPUs eager. On a GPU (not measured yet) a 150M step is ~0.3 s, a compile ~1 min.
AUTO_MIN_STEPS: dict[str, int | None] = {"cuda": 500, "cpu": None}


def compile_mode(value: str | bool) -> str:
    """The mode of a config value: YAML and `key=value` overrides read a bare off/on as False/True."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return value


def resolve_compile(value: str | bool, device: torch.device, steps: int) -> bool:
    """Whether a stage of `steps` optimizer steps on `device` is compiled under `engine.compile`."""
    mode = compile_mode(value)
    if mode not in COMPILE_MODES:
        raise ValueError(f"engine.compile {mode!r}: choose one of {COMPILE_MODES}")
    if mode != "auto":
        return mode == "on"
    threshold = AUTO_MIN_STEPS.get(device.type, AUTO_MIN_STEPS["cpu"])
    return threshold is not None and steps >= threshold


def _compile(modules: dict[str, nn.Module], options: dict[str, Any]) -> list[str]:
    for module in modules.values():
        module.compile(**options)
    return list(modules)


def compile_world_model(model: nn.Module, **options: Any) -> list[str]:
    """Compile every transformer block of a `WorldActionModel` in place; returns the compiled modules' names.
    `options` go to `torch.compile` (e.g. backend="eager" in tests: traced, not code-generated)."""
    blocks = model.transformer.blocks  # type: ignore[union-attr]
    return _compile({f"transformer.blocks.{i}": block for i, block in enumerate(blocks)}, options)


def compile_tokenizer(tokenizer: nn.Module, **options: Any) -> list[str]:
    """Compile the tokenizer's encoder and decoder (and its LPIPS net when the loss uses one) in place.
    The nearest-code search stays eager: it runs in fp32 outside autocast on purpose."""
    modules: dict[str, nn.Module] = {"encoder": tokenizer.encoder,  # type: ignore[dict-item]
                                     "decoder": tokenizer.decoder}
    perceptual = tokenizer.perceptual_net() if hasattr(tokenizer, "perceptual_net") else None
    if perceptual is not None:
        modules["lpips"] = perceptual
    return _compile(modules, options)


def is_compiled(module: nn.Module) -> bool:
    """True when `module.compile()` was called on it."""
    return getattr(module, "_compiled_call_impl", None) is not None
