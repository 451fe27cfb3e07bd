"""Checkpoint directories: `config.json` + `model.safetensors` + a model card (README.md), written atomically.

`PretrainedMixin` is huggingface_hub's `ModelHubMixin` for our modules: `save_pretrained(dir)` (and
`push_to_hub`) through the mixin, `from_pretrained(dir)` from a local directory. The directory is
self-describing (the config rebuilds the module), weights are safetensors (no pickle), and a crash
mid-write never leaves a half-written checkpoint behind. config.json records the size and sha256 of the
weights file; loading checks them and refuses non-finite weights, naming the file. A model from the Hub
is a directory too: `huggingface_hub.snapshot_download(repo_id)`, then `from_pretrained` on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import torch
from huggingface_hub import ModelCard, ModelHubMixin
from safetensors.torch import load_file, save_file

from jowa.atomic import atomic_directory, commit_directory
from jowa.config import from_dict, to_dict
from jowa.model_card import LIBRARY, TAGS, model_card

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

M = TypeVar("M", bound="PretrainedMixin")


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, incomplete or does not match the model."""


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def weights_identity(directory: str | os.PathLike) -> str:
    """"sha256:<hex>" of a checkpoint directory's weights: what token shards and fine-tuning runs record
    to say which tokenizer or model made them."""
    return f"sha256:{file_sha256(Path(directory) / WEIGHTS_NAME)}"


def check_weights_file(path: Path, record: dict[str, Any] | None) -> None:
    """Raise CheckpointError unless `path` has the size and sha256 that `record` holds (None: not recorded)."""
    if record is None:
        logging.getLogger(__name__).warning("%s: no recorded checksum (saved before checksums); loading unchecked", path)
        return
    size = path.stat().st_size
    if size != record["bytes"]:
        raise CheckpointError(f"{path}: {size:,} bytes, config.json records {record['bytes']:,} (truncated or replaced)")
    if file_sha256(path) != record["sha256"]:
        raise CheckpointError(f"{path}: content does not match the sha256 that config.json records (the file was altered)")


def check_finite(path: Path, state: dict[str, torch.Tensor]) -> None:
    bad = [name for name, value in state.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if bad:
        raise CheckpointError(f"{path}: non-finite values in {len(bad)} weight tensors ({', '.join(bad[:3])}"
                              f"{', …' if len(bad) > 3 else ''})")


class PretrainedMixin(ModelHubMixin, library_name=LIBRARY, tags=TAGS):
    """Mixin for `nn.Module`s built from a single dataclass config stored as `self.config`.

    Saving goes through huggingface_hub's `ModelHubMixin.save_pretrained` (weights and config by
    `_save_pretrained`, then the model card), into a temporary directory that replaces the target only
    when complete; `push_to_hub` comes with the mixin. Loading reads local directories only (no network):
    a directory pulled from the Hub (`huggingface_hub.snapshot_download`) loads like any other.
    """

    config_class: ClassVar[type]
    kind: ClassVar[str]  # written into config.json so a directory says what it holds

    def save_pretrained(self, directory: str | Path, extra: dict[str, Any] | None = None,  # type: ignore[override]
                        results: Mapping[str, Mapping[str, Any]] | None = None, **hub_kwargs: Any) -> Path:
        """Write `directory` atomically; `extra` joins config.json, `results` (report.json `results.games`)
        the model card's model-index. `hub_kwargs` as ModelHubMixin.save_pretrained (e.g. push_to_hub)."""
        directory = Path(directory)
        tmp = atomic_directory(directory)
        try:
            card = {"results": results, **(hub_kwargs.pop("model_card_kwargs", None) or {})}
            ModelHubMixin.save_pretrained(self, tmp, model_card_kwargs=card, **hub_kwargs)
            if extra:
                meta = json.loads((tmp / CONFIG_NAME).read_text())
                weights = meta.pop("weights")
                (tmp / CONFIG_NAME).write_text(json.dumps({**meta, **extra, "weights": weights}, indent=2))
            commit_directory(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    def _save_pretrained(self, save_directory: Path) -> None:
        """Our layout: model.safetensors, and config.json with kind, config and the weights' size + sha256."""
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}  # type: ignore[attr-defined]
        save_file(state, str(save_directory / WEIGHTS_NAME), metadata={"kind": self.kind})
        weights = {"bytes": (save_directory / WEIGHTS_NAME).stat().st_size,
                   "sha256": file_sha256(save_directory / WEIGHTS_NAME)}
        meta = {"kind": self.kind, "config": to_dict(self.config), "weights": weights}  # type: ignore[attr-defined]
        (save_directory / CONFIG_NAME).write_text(json.dumps(meta, indent=2))

    def generate_model_card(self, results: Mapping[str, Mapping[str, Any]] | None = None, **_: Any) -> ModelCard:
        return model_card(self.kind, f"jowa-{self.kind}", results)

    @classmethod
    def read_meta(cls, directory: str | Path) -> dict[str, Any]:
        path = Path(directory) / CONFIG_NAME
        if not path.is_file():
            raise CheckpointError(f"{directory}: no {CONFIG_NAME}; not a {cls.kind} checkpoint directory")
        try:
            meta = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise CheckpointError(f"{path}: not valid JSON ({error})") from error
        if meta.get("kind") != cls.kind:
            raise CheckpointError(f"{directory}: holds a {meta.get('kind')!r} checkpoint, expected {cls.kind!r}")
        return meta

    @classmethod
    def read_config(cls, directory: str | Path) -> Any:
        return from_dict(cls.config_class, cls.read_meta(directory)["config"], where=str(Path(directory) / CONFIG_NAME))

    @classmethod
    def from_pretrained(cls: type[M], directory: str | Path, map_location: str | torch.device = "cpu") -> M:
        meta = cls.read_meta(directory)
        model = cls(from_dict(cls.config_class, meta["config"], where=str(Path(directory) / CONFIG_NAME)))  # type: ignore[call-arg]
        weights = Path(directory) / WEIGHTS_NAME
        if not weights.is_file():
            raise CheckpointError(f"{directory}: no {WEIGHTS_NAME}")
        check_weights_file(weights, meta.get("weights"))
        try:
            state = load_file(str(weights), device=str(map_location))
        except Exception as error:  # safetensors raises several types for a damaged file
            raise CheckpointError(f"{weights}: unreadable ({error})") from error
        check_finite(weights, state)
        model.load_state_dict(state, strict=True)  # type: ignore[attr-defined]
        return model.to(map_location)  # type: ignore[attr-defined,return-value]


def find_model_dir(run: str | Path, kind: str) -> Path:
    """The newest `kind` checkpoint directory (`world_model` or `tokenizer`) inside a run directory.

    Accepts the directory itself, `RUN/{kind}/`, a pretraining run (`RUN/final/{kind}/`), or else the
    most recently written nested checkpoint (e.g. `RUN/world/checkpoints/step_N/{kind}`).
    """
    run = Path(run)
    if not run.is_dir():
        raise CheckpointError(f"Run directory not found: {run}")
    if (run / CONFIG_NAME).is_file() and json.loads((run / CONFIG_NAME).read_text()).get("kind") == kind:
        return run
    for candidate in (run / kind, run / "final" / kind):
        if (candidate / CONFIG_NAME).is_file():
            return candidate
    found = [p.parent for p in run.rglob(f"{kind}/{CONFIG_NAME}") if not any(part.startswith(".") for part in p.parts)]
    if not found:
        raise CheckpointError(f"{run}: no {kind} checkpoint (expected {run / kind / CONFIG_NAME})")
    return max(found, key=lambda p: (p / WEIGHTS_NAME).stat().st_mtime if (p / WEIGHTS_NAME).exists() else 0.0)
