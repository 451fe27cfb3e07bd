"""An episode of Atari play: the unit the replay reader yields and the tokenizer consumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jowa.games import NUM_ACTIONS, check_game


@dataclass
class Episode:
    """n consecutive steps of one game: row i is (frame_i, action_i, reward_i, terminal_i) (Dopamine rows).

    `run` and `start` say where it came from: the run directory name and the global row index of its
    first step in that run's replay stream (padding rows excluded), so (game, run, start) is unique.
    """

    frames: np.ndarray  # [n, 84, 84] uint8
    actions: np.ndarray  # [n] int64 full-set action index 0..17
    rewards: np.ndarray  # [n] float32 as stored (DQN-Replay: clipped to [-1, 1])
    terminals: np.ndarray  # [n] uint8, 1 at the last step of an episode that ended
    game: str
    run: str = ""
    start: int = -1

    def __post_init__(self) -> None:
        check_game(self.game)
        n = len(self.actions)
        expected = {
            "frames": (self.frames, np.uint8, (n, 84, 84)),
            "actions": (self.actions, np.int64, (n,)),
            "rewards": (self.rewards, np.float32, (n,)),
            "terminals": (self.terminals, np.uint8, (n,)),
        }
        for name, (value, dtype, shape) in expected.items():
            if not isinstance(value, np.ndarray) or value.dtype != dtype or value.shape != shape:
                got = f"{value.dtype}{value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
                raise ValueError(f"Episode {self.key}: {name} must be {np.dtype(dtype)}{shape}, got {got}")
        if n and (self.actions.min() < 0 or self.actions.max() >= NUM_ACTIONS):
            raise ValueError(f"Episode {self.key}: actions must be full-set indices 0..{NUM_ACTIONS - 1}")

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def key(self) -> str:
        return f"{self.game}/{self.run}/{self.start}"
