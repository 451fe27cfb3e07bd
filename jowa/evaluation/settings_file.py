"""Per-game evaluation settings files (`configs/eval/*.yaml`, `plan.py --settings`): a horizon H and, per
game, the context (blocks of real history) and beam width K, read strictly (unknown keys and games fail).

`configs/eval/jowa_{40M,70M,150M}.yaml` are the paper's settings behind its results with planning
(docs/official_jowa.md §8.4); `paper_settings` reads them, so the table exists once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jowa.config import CONFIG_DIR, from_dict, load_yaml
from jowa.games import check_game


@dataclass
class TableEntry:
    """One game's row of a `--settings` file (configs/eval/*.yaml); unset keys keep the CLI values."""

    context: int | None = None
    beam_width: int | None = None


@dataclass
class SettingsFile:
    horizon: int | None = None
    games: dict[str, Any] = field(default_factory=dict)  # game → TableEntry fields


def read_settings_file(path: Path) -> tuple[int | None, dict[str, TableEntry]]:
    """The horizon and per-game rows of a settings file, strictly: unknown keys and games are errors."""
    try:
        data = load_yaml(SettingsFile, path)
        table = {check_game(g): from_dict(TableEntry, v or {}, where=f"{path}: games.{g}")
                 for g, v in data.games.items()}
    except (KeyError, TypeError) as error:
        raise ValueError(f"settings file: {error.args[0]}") from error
    values = {"horizon": data.horizon, **{f"games.{g}.{k}": v for g, e in table.items() for k, v in vars(e).items()}}
    for key, value in values.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ValueError(f"settings file {path}: {key} must be an integer, got {value!r}")
    return data.horizon, table


def paper_settings(size: str) -> tuple[int, dict[str, TableEntry]]:
    """(H, per-game rows) of the paper's JOWA-`size` results with planning (40M, 70M or 150M)."""
    horizon, table = read_settings_file(CONFIG_DIR / "eval" / f"jowa_{size}.yaml")
    if horizon is None:
        raise ValueError(f"configs/eval/jowa_{size}.yaml: the paper's settings name their horizon")
    return horizon, table
