"""The record file of a staged run (the demo's demo.json, the study's study.json): its settings and stages.

A rerun with the same settings continues from the record; other settings, or a directory holding anything
else, are refused before any work.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jowa.atomic import write_json


def open_record(path: Path, fresh: dict[str, Any], check_same: Callable[[dict[str, Any]], None],
                not_a_run: str) -> dict[str, Any]:
    """The record at `path` once `check_same(record)` accepts it (it raises ValueError otherwise), or `fresh`,
    written to `path`, when its directory is new or empty; any other directory is FileExistsError(not_a_run)."""
    if path.is_file():
        record = json.loads(path.read_text())
        check_same(record)
        return record
    out = path.parent
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(not_a_run)
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, fresh)
    return fresh
