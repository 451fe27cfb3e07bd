"""`run.json`: what a run directory is (size, model config) and which stages are done.

A re-run reads it to skip finished stages; a different model configuration in the same directory is
refused instead of silently mixing checkpoints of two architectures.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jowa.atomic import write_json

RUN_FILE = "run.json"


@dataclass
class RunRecord:
    directory: Path
    size: str
    model: dict[str, Any]
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def open(cls, directory: Path, size: str, model: dict[str, Any]) -> "RunRecord":
        """The directory's record, or a fresh one; raises if it was made for another model."""
        path = directory / RUN_FILE
        if not path.is_file():
            return cls(directory, size, model)
        data = json.loads(path.read_text())
        if data["model"] != model:
            differ = sorted(k for k in set(data["model"]) | set(model) if data["model"].get(k) != model.get(k))
            raise ValueError(f"{directory} holds a run of size {data['size']!r} with another model configuration "
                             f"(sections {differ} differ); use a new --out")
        return cls(directory, data["size"], data["model"], data.get("stages", {}))

    def done(self, stage: str) -> dict[str, Any] | None:
        entry = self.stages.get(stage)
        return entry if entry and entry.get("status") == "done" else None

    def mark(self, stage: str, **facts: Any) -> None:
        self.stages[stage] = {**facts, "finished_at": time.strftime("%Y-%m-%d %H:%M:%S")}
        self.save()

    def save(self) -> None:
        write_json(self.directory / RUN_FILE, {"size": self.size, "model": self.model, "stages": self.stages})
