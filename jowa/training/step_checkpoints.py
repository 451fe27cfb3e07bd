"""Checkpoint directories `step_00000123/` under a stage's `checkpoints/` folder.

Writing: every rank writes its part into `.step_00000123.tmp/`; after a barrier rank 0 writes
`manifest.json` (size + sha256 of every file) and renames the directory into place, then prunes all
but the newest `keep_last`. A directory without a matching manifest is therefore never mistaken for
a finished checkpoint.

Reading: `newest_valid` walks from the newest; a directory whose files do not match its manifest is
reported by name (which file, what is wrong) and the previous one is used.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from jowa.atomic import commit_directory
from jowa.model_files import file_sha256
from jowa.training.distributed import DistContext, barrier, broadcast_object

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_NAME = re.compile(r"^step_(\d{8})$")


class CorruptCheckpoint(RuntimeError):
    """A checkpoint directory whose contents do not match its manifest."""


def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def write_manifest(directory: Path, step: int) -> None:
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST)
    entries = {str(p.relative_to(directory)): {"size": p.stat().st_size, "sha256": file_sha256(p)} for p in files}
    (directory / MANIFEST).write_text(json.dumps({"step": step, "files": entries}, indent=1))


def validate(directory: Path, under: str | None = None) -> int:
    """The checkpoint's step if every file matches the manifest; raises CorruptCheckpoint otherwise.

    With `under` (a subdirectory), only the files there are checked, and a file there that the manifest
    does not list is an error too: what a loader is about to unpickle must be exactly what was written."""
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise CorruptCheckpoint(f"{directory}: no {MANIFEST} (the write never finished)")
    try:
        manifest = json.loads(manifest_path.read_text())
        step, files = int(manifest["step"]), manifest["files"]
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptCheckpoint(f"{manifest_path}: unreadable ({error})") from error
    if under is not None:
        files = {name: entry for name, entry in files.items() if Path(name).parts[:1] == (under,)}
        unlisted = sorted(str(p.relative_to(directory)) for p in (directory / under).rglob("*")
                          if p.is_file() and str(p.relative_to(directory)) not in files)
        if unlisted:
            raise CorruptCheckpoint(f"{directory / unlisted[0]}: not in the manifest ({len(unlisted)} such files)")
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise CorruptCheckpoint(f"{path}: missing")
        size = path.stat().st_size
        if size != expected["size"]:
            raise CorruptCheckpoint(f"{path}: {size} bytes, the manifest says {expected['size']}")
        if file_sha256(path) != expected["sha256"]:
            raise CorruptCheckpoint(f"{path}: content does not match its sha256 in the manifest")
    return step


@dataclass
class Resume:
    directory: Path | None  # None: nothing valid to resume from
    problems: list[str] = field(default_factory=list)  # one line per corrupt checkpoint passed over


class CheckpointManager:
    def __init__(self, root: Path, keep_last: int, ctx: DistContext) -> None:
        self.root = Path(root)
        self.keep_last = keep_last
        self.ctx = ctx

    def finished(self) -> list[Path]:
        """Checkpoint directories by step, newest first (validity not checked)."""
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.iterdir() if p.is_dir() and _NAME.match(p.name)]
        return sorted(found, key=lambda p: p.name, reverse=True)

    def save(self, step: int, write: Callable[[Path], None]) -> Path:
        """Collective: `write(tmp_dir)` runs on every rank, each writing its own files."""
        final = self.root / step_dir_name(step)
        tmp = self.root / f".{final.name}.tmp"
        if self.ctx.is_main:
            shutil.rmtree(tmp, ignore_errors=True)  # leftovers of a killed write
            tmp.mkdir(parents=True)
        barrier()
        write(tmp)
        barrier()
        if self.ctx.is_main:
            write_manifest(tmp, step)
            commit_directory(tmp, final)
            self._prune()
        barrier()
        return final

    def _prune(self) -> None:
        for old in self.finished()[self.keep_last:]:
            shutil.rmtree(old, ignore_errors=True)

    def newest_valid(self) -> Resume:
        """Rank 0 validates and decides; every rank gets the same answer."""
        choice: Resume | None = None
        if self.ctx.is_main:
            choice = Resume(None)
            for directory in self.finished():
                try:
                    validate(directory)
                except CorruptCheckpoint as error:
                    message = f"checkpoint {directory.name} is corrupt and was skipped: {error}"
                    log.warning(message)
                    choice.problems.append(message)
                    continue
                choice.directory = directory
                break
        return broadcast_object(choice)  # type: ignore[return-value]
