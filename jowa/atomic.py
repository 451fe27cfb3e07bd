"""Atomic writes: every file and directory we publish is written under a temporary name and renamed.

A crash or SIGTERM mid-write then leaves the previous version (or nothing), never half a file. Temporary
names start with a dot and sit beside the target (a rename is atomic only within one filesystem).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`, on failure removed.

    The temporary name keeps the target's suffix, so writers that pick a format by extension work."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: object, indent: int = 1) -> None:
    write_text(path, json.dumps(data, indent=indent))


def atomic_directory(final: Path) -> Path:
    """A fresh temporary directory beside `final`; pass it to `commit_directory` when complete."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))


def commit_directory(tmp: Path, final: Path) -> None:
    """Replace `final` by the finished `tmp` directory (rename is atomic on one filesystem)."""
    if final.exists():
        trash = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)


def copy_directory(source: Path, target: Path, ignore: Callable[[str, list[str]], set[str]] | None = None) -> None:
    """Copy `source` to `target` through a temporary directory (`ignore` as in shutil.copytree)."""
    tmp = atomic_directory(target)
    try:
        shutil.copytree(source, tmp, ignore=ignore, dirs_exist_ok=True)
        commit_directory(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
