"""Checkpoint directories: `config.json` + `model.safetensors`, written atomically.

`PretrainedMixin` gives a module `save_pretrained(dir)` / `from_pretrained(dir)` in the spirit of
Hugging Face: the directory is self-describing (the config rebuilds the module), weights are
safetensors (no pickle), and a crash mid-write never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors.torch import load_file, save_file

from jowa.config import from_dict, to_dict

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

M = TypeVar("M", bound="PretrainedMixin")


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, incomplete or does not match the model."""


def write_json(path: Path, data: object) -> None:
    """Write JSON through a temporary file and a rename: a crash never leaves half a record."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def atomic_directory(final: Path) -> Path:
    """A fresh temporary directory beside `final`; pass it to `commit_directory` when complete."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))


def commit_directory(tmp: Path, final: Path) -> None:
    """Replace `final` by the finished `tmp` directory (rename is atomic on one filesystem)."""
    if final.exists():
        trash = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)


class PretrainedMixin:
    """Mixin for `nn.Module`s built from a single dataclass config stored as `self.config`."""

    config_class: ClassVar[type]
    kind: ClassVar[str]  # written into config.json so a directory says what it holds

    def save_pretrained(self, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
        directory = Path(directory)
        tmp = atomic_directory(directory)
        try:
            meta = {"kind": self.kind, "config": to_dict(self.config), **(extra or {})}
            (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2))
            state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}  # type: ignore[attr-defined]
            save_file(state, str(tmp / WEIGHTS_NAME), metadata={"kind": self.kind})
            commit_directory(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    @classmethod
    def read_config(cls, directory: str | Path) -> Any:
        path = Path(directory) / CONFIG_NAME
        if not path.is_file():
            raise CheckpointError(f"{directory}: no {CONFIG_NAME}; not a {cls.kind} checkpoint directory")
        meta = json.loads(path.read_text())
        if meta.get("kind") != cls.kind:
            raise CheckpointError(f"{directory}: holds a {meta.get('kind')!r} checkpoint, expected {cls.kind!r}")
        return from_dict(cls.config_class, meta["config"], where=str(path))

    @classmethod
    def from_pretrained(cls: type[M], directory: str | Path, map_location: str | torch.device = "cpu") -> M:
        config = cls.read_config(directory)
        model = cls(config)  # type: ignore[call-arg]
        weights = Path(directory) / WEIGHTS_NAME
        if not weights.is_file():
            raise CheckpointError(f"{directory}: no {WEIGHTS_NAME}")
        try:
            state = load_file(str(weights), device=str(map_location))
        except Exception as error:  # safetensors raises several types for a damaged file
            raise CheckpointError(f"{weights}: unreadable ({error})") from error
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
