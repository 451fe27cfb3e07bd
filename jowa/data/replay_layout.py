"""DQN-Replay's file layout (Dopamine logged replay buffers): where runs, chunks and their members live.

Layout: `{root}/{Game}/{run}/replay_logs/{member}_ckpt.{N}.gz` with the members `$store$_observation`
(u8[C, 84, 84]), `$store$_action` (i32[C], minimal-set index), `$store$_reward` (f32[C]),
`$store$_terminal` (u8[C]), `add_count` (0-d int) and `invalid_range` (int[5]). Runs and suffixes are
discovered by listing. See docs/dqn_replay_format.md.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from jowa.games import GAME_NAMES, check_game

STORE = ("observation", "action", "reward", "terminal")
STORE_DTYPES = {"observation": np.uint8, "action": np.int32, "reward": np.float32, "terminal": np.uint8}
FRAME_SHAPE = (84, 84)
PADDING_ROWS = 3  # stack_size - 1 all-zero rows before every episode
_FILE = re.compile(r"^(\$store\$_(?:observation|action|reward|terminal)|add_count|invalid_range)_ckpt\.(\d+)\.gz$")


def member_path(log_dir: str | os.PathLike, member: str, suffix: int) -> Path:
    """`member` is a store name ("observation", …) or "add_count" / "invalid_range"."""
    prefix = f"$store$_{member}" if member in STORE else member
    return Path(log_dir) / f"{prefix}_ckpt.{suffix}.gz"


def replay_log_dir(root: str | os.PathLike, game: str, run: str | int) -> Path:
    return Path(root) / game / str(run) / "replay_logs"


def list_games(root: str | os.PathLike) -> list[str]:
    """Catalogue games with a directory under `root`, in task-id order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Replay root {root} is not a directory")
    return [g for g in GAME_NAMES if (root / g).is_dir()]


def list_runs(root: str | os.PathLike, game: str) -> list[str]:
    """Run directories of `game` that hold a replay_logs folder, numerically sorted."""
    game_dir = Path(root) / check_game(game)
    if not game_dir.is_dir():
        raise FileNotFoundError(f"No replay directory for {game}: {game_dir}")
    return sorted((p.name for p in game_dir.iterdir() if (p / "replay_logs").is_dir()), key=run_order)


def run_order(run: str) -> tuple[bool, int, str]:
    """Sort key: numeric run names numerically ("2" < "10"), then the others by name."""
    return (not run.isdigit(), int(run) if run.isdigit() else 0, run)


def list_suffixes(log_dir: str | os.PathLike) -> dict[int, set[str]]:
    """Suffix → members present ("observation", …, "add_count", "invalid_range")."""
    found: dict[int, set[str]] = {}
    for name in os.listdir(log_dir):
        match = _FILE.match(name)
        if match:
            member = match.group(1).removeprefix("$store$_")
            found.setdefault(int(match.group(2)), set()).add(member)
    return dict(sorted(found.items()))
