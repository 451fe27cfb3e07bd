"""What a checkpoint holds besides weights and optimizer: counters, RNG states, data position.

`TrainState` is global (rank 0 writes `training_state.pt`); `RankState` is per rank
(`rank_{r}.pt`): each rank has its own data stream and its own dropout RNG. Everything is stored
as plain types and tensors, so the files load with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

TRAINING_STATE = "training_state.pt"


def rank_file(rank: int) -> str:
    return f"rank_{rank:05d}.pt"


@dataclass
class TrainState:
    stage: str
    step: int = 0  # optimizer steps attempted (skipped ones included)
    skipped_steps: int = 0  # total steps skipped for non-finite loss/gradient
    bad_in_row: int = 0  # consecutive skipped steps up to `step`
    items_seen: int = 0  # segments (world) or frames (tokenizer), all ranks
    world_size: int = 1
    engine: str = "torch"
    extra: dict[str, Any] = field(default_factory=dict)  # stage-specific facts (e.g. tokenizer fingerprint)

    def save(self, directory: Path) -> None:
        torch.save(asdict(self), directory / TRAINING_STATE)

    @classmethod
    def load(cls, directory: Path) -> "TrainState":
        return cls(**torch.load(directory / TRAINING_STATE, weights_only=True))


def capture_rng() -> dict[str, Any]:
    """RNG states of torch (CPU and every CUDA device), numpy's global RNG and python's `random`."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class RankState:
    rng: dict[str, Any]
    data: dict[str, Any]  # the batch source's position after the last consumed batch

    def save(self, directory: Path, rank: int) -> None:
        torch.save({"rng": self.rng, "data": self.data}, directory / rank_file(rank))

    @classmethod
    def load(cls, directory: Path, rank: int) -> "RankState":
        path = directory / rank_file(rank)
        if not path.is_file():
            raise FileNotFoundError(f"{directory}: no state for rank {rank} ({path.name}); was it written with "
                                    f"a different number of ranks?")
        return cls(**torch.load(path, weights_only=True))
