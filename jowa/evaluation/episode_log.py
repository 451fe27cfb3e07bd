"""The episodes of an evaluation, appended as they finish, so that a stopped evaluation loses nothing.

`REPORT_DIR/episodes.jsonl`: a header line with the settings that decide what an episode means (run,
games' settings, protocol, planner), then one line per finished episode. Rerunning the same command
reads it and plays only the episodes still missing; other settings in the same directory are refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

EPISODES_NAME = "episodes.jsonl"
FORMAT = "jowa-episodes/1"


class EpisodeLog:
    def __init__(self, path: Path, settings: Mapping[str, Any], restart_other: bool = False) -> None:
        """Open (or start) the log at `path` for evaluations with exactly these `settings`. A log of other
        settings is an error, or with `restart_other` (for callers that own the directory) replaced."""
        self.path = path
        self.settings = json.loads(json.dumps(settings))  # as it reads back from JSON
        self.records: list[dict[str, Any]] = []
        if path.is_file() and path.stat().st_size and restart_other and self._header_settings() != self.settings:
            path.unlink()
        if path.is_file() and path.stat().st_size:
            self._read()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._write_line({"format": FORMAT, "settings": self.settings})

    def _header_settings(self) -> Any:
        try:
            return json.loads(self.path.read_text().split("\n", 1)[0]).get("settings")
        except (json.JSONDecodeError, AttributeError):
            return None

    def _read(self) -> None:
        lines = self.path.read_text().splitlines()
        try:
            header = json.loads(lines[0])
        except (json.JSONDecodeError, IndexError) as error:
            raise ValueError(f"{self.path}: not an episode log ({error})") from error
        if header.get("format") != FORMAT:
            raise ValueError(f"{self.path}: not a {FORMAT} episode log")
        if header["settings"] != self.settings:
            differ = sorted(k for k in {*header["settings"], *self.settings}
                            if header["settings"].get(k) != self.settings.get(k))
            raise ValueError(f"{self.path} holds episodes of an evaluation with other settings ({', '.join(differ)}); "
                             f"rerun it with those settings or choose another --out")
        for number, line in enumerate(lines[1:], start=2):
            try:
                self.records.append(json.loads(line))
            except json.JSONDecodeError:
                if number != len(lines):  # only a line cut by a crash mid-write may be bad
                    raise ValueError(f"{self.path}: line {number} is not JSON") from None
        with self.path.open("w") as f:  # drop a cut last line for good
            f.write("\n".join([json.dumps(header), *(json.dumps(r) for r in self.records)]) + "\n")

    def _write_line(self, data: Mapping[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(data) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def append(self, side: str, game: str, episode_return: float, steps: int, actions: list[int] | None = None) -> None:
        """One finished episode; `actions`: how often each full-set action was played in it."""
        record = {"side": side, "game": game, "return": episode_return, "steps": steps}
        if actions is not None:
            record["actions"] = list(actions)
        self._write_line(record)
        self.records.append(record)

    def returns(self, side: str, game: str) -> list[float]:
        return [r["return"] for r in self.records if r["side"] == side and r["game"] == game]

    def action_counts(self, side: str, game: str) -> list[int] | None:
        """How often each full-set action was played over the side's episodes of `game` (None: a log
        written before actions were recorded, or no episode)."""
        counts = [r.get("actions") for r in self.records if r["side"] == side and r["game"] == game]
        if not counts or any(c is None for c in counts):
            return None
        return [sum(column) for column in zip(*counts)]

    def lengths(self, side: str, game: str) -> list[int]:
        return [r["steps"] for r in self.records if r["side"] == side and r["game"] == game]
