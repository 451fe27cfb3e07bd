"""The official 60-game catalogue: task ids, the full 18-action set, valid-action masks, reference scores.

Task ids index the alphabetical list the official code uses (docs/official_jowa.md §1.1). Every game's minimal action
set is listed as full-set indices in ALE's minimal-set order, so `minimal_to_full(game)[i]` is the full
action for the environment's minimal action i.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

GAME_NAMES: tuple[str, ...] = (
    "AirRaid", "Alien", "Amidar", "Assault", "Asterix", "Asteroids", "Atlantis", "BankHeist",
    "BattleZone", "BeamRider", "Berzerk", "Bowling", "Boxing", "Breakout", "Carnival", "Centipede",
    "ChopperCommand", "CrazyClimber", "DemonAttack", "DoubleDunk", "ElevatorAction", "Enduro",
    "FishingDerby", "Freeway", "Frostbite", "Gopher", "Gravitar", "Hero", "IceHockey", "Jamesbond",
    "JourneyEscape", "Kangaroo", "Krull", "KungFuMaster", "MontezumaRevenge", "MsPacman",
    "NameThisGame", "Phoenix", "Pitfall", "Pong", "Pooyan", "PrivateEye", "Qbert", "Riverraid",
    "RoadRunner", "Robotank", "Seaquest", "Skiing", "Solaris", "SpaceInvaders", "StarGunner",
    "Tennis", "TimePilot", "Tutankham", "UpNDown", "Venture", "VideoPinball", "WizardOfWor",
    "YarsRevenge", "Zaxxon",
)
NUM_GAMES = len(GAME_NAMES)
TASK_IDS: dict[str, int] = {name: i for i, name in enumerate(GAME_NAMES)}

FULL_ACTIONS: tuple[str, ...] = (
    "NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT",
    "UPFIRE", "RIGHTFIRE", "LEFTFIRE", "DOWNFIRE", "UPRIGHTFIRE", "UPLEFTFIRE", "DOWNRIGHTFIRE",
    "DOWNLEFTFIRE",
)
NUM_ACTIONS = len(FULL_ACTIONS)

PRETRAIN_GAMES: tuple[str, ...] = (
    "Assault", "Atlantis", "BeamRider", "Berzerk", "Carnival", "Centipede", "ChopperCommand",
    "DemonAttack", "NameThisGame", "Phoenix", "Seaquest", "SpaceInvaders", "StarGunner", "TimePilot",
    "Zaxxon",
)
FINETUNE_GAMES: tuple[str, ...] = ("Pong", "MsPacman", "Gravitar", "YarsRevenge", "Robotank")
# The official fine-tuning borrowed a "similar" pretraining game's task-embedding row (docs/official_jowa.md §1.1).
OFFICIAL_BORROWED_TASK_ROWS: dict[str, str] = {
    "Robotank": "Phoenix", "YarsRevenge": "ChopperCommand", "Gravitar": "TimePilot", "MsPacman": "Berzerk",
}

_ALL = tuple(range(18))
_FIRE_LR = (0, 1, 3, 4, 11, 12)
MINIMAL_ACTION_SETS: dict[str, tuple[int, ...]] = {
    "AirRaid": _FIRE_LR, "Alien": _ALL, "Amidar": (0, 1, 2, 3, 4, 5, 10, 11, 12, 13),
    "Assault": (0, 1, 2, 3, 4, 11, 12), "Asterix": (0, 2, 3, 4, 5, 6, 7, 8, 9),
    "Asteroids": (0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15), "Atlantis": (0, 1, 11, 12),
    "BankHeist": _ALL, "BattleZone": _ALL, "BeamRider": (0, 1, 2, 3, 4, 6, 7, 11, 12), "Berzerk": _ALL,
    "Bowling": (0, 1, 2, 5, 10, 13), "Boxing": _ALL, "Breakout": (0, 1, 3, 4), "Carnival": _FIRE_LR,
    "Centipede": _ALL, "ChopperCommand": _ALL, "CrazyClimber": (0, 2, 3, 4, 5, 6, 7, 8, 9),
    "DemonAttack": _FIRE_LR, "DoubleDunk": _ALL, "ElevatorAction": _ALL,
    "Enduro": (0, 1, 3, 4, 5, 8, 9, 11, 12), "FishingDerby": _ALL, "Freeway": (0, 2, 5),
    "Frostbite": _ALL, "Gopher": (0, 1, 2, 3, 4, 10, 11, 12), "Gravitar": _ALL, "Hero": _ALL,
    "IceHockey": _ALL, "Jamesbond": _ALL,
    "JourneyEscape": (0, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17), "Kangaroo": _ALL,
    "Krull": _ALL, "KungFuMaster": (0, 2, 3, 4, 5, 8, 9, 11, 12, 13, 14, 15, 16, 17),
    "MontezumaRevenge": _ALL, "MsPacman": (0, 2, 3, 4, 5, 6, 7, 8, 9), "NameThisGame": _FIRE_LR,
    "Phoenix": (0, 1, 3, 4, 5, 11, 12, 13), "Pitfall": _ALL, "Pong": _FIRE_LR,
    "Pooyan": (0, 1, 2, 5, 10, 13), "PrivateEye": _ALL, "Qbert": (0, 1, 2, 3, 4, 5), "Riverraid": _ALL,
    "RoadRunner": _ALL, "Robotank": _ALL, "Seaquest": _ALL, "Skiing": (0, 3, 4), "Solaris": _ALL,
    "SpaceInvaders": _FIRE_LR, "StarGunner": _ALL, "Tennis": _ALL,
    "TimePilot": (0, 1, 2, 3, 4, 5, 10, 11, 12, 13), "Tutankham": (0, 2, 3, 4, 5, 10, 11, 12),
    "UpNDown": (0, 1, 2, 5, 10, 13), "Venture": _ALL, "VideoPinball": (0, 1, 2, 3, 4, 5, 10, 11, 12),
    "WizardOfWor": (0, 1, 2, 3, 4, 5, 10, 11, 12, 13), "YarsRevenge": _ALL, "Zaxxon": _ALL,
}


@dataclass(frozen=True)
class ReferenceScores:
    random: float
    human: float | None  # None where no human score is known (the official table's Pooyan entry is a 0 placeholder)
    dqn: float | None  # None where the official table gives no DQN score: DNS is then undefined


# results/base_scores.py of the official code: random, human and DQN scores of 46 games (docs/official_jowa.md
# §8.5). The official human score of Pooyan is a placeholder 0, kept out here (Pooyan has DNS, not HNS).
_OFFICIAL_BASE_SCORES: dict[str, tuple[float, float | None, float]] = {
    "Alien": (227.8, 7127.7, 2484.5), "Amidar": (5.8, 1719.5, 1207.7), "Assault": (222.4, 742.0, 1525.2),
    "Asterix": (210.0, 8503.3, 2711.4), "Atlantis": (12850.0, 29028.1, 853640.0),
    "BankHeist": (14.2, 753.1, 601.8), "BattleZone": (2360.0, 37187.5, 17784.8),
    "BeamRider": (363.9, 16926.5, 5852.4), "Berzerk": (123.7, 2630.4, 487.5), "Boxing": (0.1, 12.1, 78.0),
    "Breakout": (1.7, 30.5, 96.2), "Carnival": (700.8, 3800.0, 4784.8), "Centipede": (2090.9, 12017.0, 2583.0),
    "ChopperCommand": (811.0, 7387.8, 2690.6), "CrazyClimber": (10780.5, 35829.4, 104568.8),
    "DemonAttack": (152.1, 1971.0, 6361.6), "DoubleDunk": (-18.6, -16.4, -6.5), "Enduro": (0.0, 860.5, 628.9),
    "FishingDerby": (-91.7, -38.7, 0.6), "Freeway": (0.0, 29.6, 26.3), "Frostbite": (65.2, 4334.7, 367.1),
    "Gopher": (257.6, 2412.5, 5479.9), "Gravitar": (173.0, 3351.4, 330.1), "Hero": (1027.0, 30826.4, 17325.4),
    "IceHockey": (-11.2, 0.9, -5.8), "Jamesbond": (29.0, 302.8, 573.3), "Kangaroo": (52.0, 3035.0, 11486.0),
    "Krull": (1598.0, 2665.5, 6097.6), "KungFuMaster": (258.5, 22736.3, 23435.4),
    "MsPacman": (307.3, 6951.6, 3402.4), "NameThisGame": (2292.3, 8049.0, 7278.6),
    "Phoenix": (761.4, 7242.6, 4996.6), "Pong": (-20.7, 14.6, 16.6), "Pooyan": (371.2, None, 3212.0),
    "Qbert": (163.9, 13455.0, 10117.5), "Riverraid": (1338.5, 17118.0, 11638.9), "Robotank": (2.2, 11.9, 59.8),
    "Seaquest": (68.4, 42054.7, 1600.7), "SpaceInvaders": (148.0, 1668.7, 1794.2),
    "StarGunner": (664.0, 10250.0, 42165.2), "TimePilot": (3568.0, 5229.2, 3654.4),
    "UpNDown": (533.4, 11693.2, 8488.3), "VideoPinball": (16256.9, 17667.9, 63406.1),
    "WizardOfWor": (563.5, 4756.5, 2065.8), "YarsRevenge": (3092.9, 54576.9, 23909.4),
    "Zaxxon": (32.5, 9173.3, 4538.6),
}

# Random and human scores of further catalogue games, from DeepMind's Atari-57 table (dqn_zoo/atari_data.py:
# no-op starts, 108k-frame cap), which agrees exactly with the official entries it shares. These games have
# HNS but no DNS. AirRaid, ElevatorAction and JourneyEscape are in neither table and have no reference scores.
_ATARI57_RANDOM_HUMAN: dict[str, tuple[float, float | None, None]] = {
    name: (random, human, None)
    for name, (random, human) in {
        "Asteroids": (719.1, 47388.7), "Bowling": (23.1, 160.7), "MontezumaRevenge": (0.0, 4753.3),
        "Pitfall": (-229.4, 6463.7), "PrivateEye": (24.9, 69571.3), "RoadRunner": (11.5, 7845.0),
        "Skiing": (-17098.1, -4336.9), "Solaris": (1236.3, 12326.7), "Tennis": (-23.8, -8.3),
        "Tutankham": (11.4, 167.6), "Venture": (0.0, 1187.5),
    }.items()
}

REFERENCE_SCORES: dict[str, ReferenceScores] = {
    name: ReferenceScores(*values) for name, values in {**_OFFICIAL_BASE_SCORES, **_ATARI57_RANDOM_HUMAN}.items()
}


def check_game(game: str) -> str:
    """Return `game` unchanged, or raise naming the close matches if it is not in the catalogue."""
    if game in TASK_IDS:
        return game
    lowered = {name.lower(): name for name in GAME_NAMES}
    hint = lowered.get(game.lower().replace("_", "").replace("-", ""))
    suffix = f" Did you mean {hint!r}?" if hint else " Known games: " + ", ".join(GAME_NAMES)
    raise ValueError(f"Unknown game {game!r}.{suffix}")


def task_id(game: str) -> int:
    return TASK_IDS[check_game(game)]


def minimal_to_full(game: str) -> tuple[int, ...]:
    """Full-set index of each of the game's minimal actions, in ALE's minimal-set order."""
    return MINIMAL_ACTION_SETS[check_game(game)]


def full_to_minimal(game: str) -> np.ndarray:
    """[18] int64: minimal index of each full action; -1 where the action is not valid in the game."""
    table = np.full(NUM_ACTIONS, -1, dtype=np.int64)
    table[list(minimal_to_full(game))] = np.arange(len(minimal_to_full(game)))
    return table


def action_masks() -> torch.Tensor:
    """[60, 18] bool: True where the full action belongs to the game's minimal set (official table)."""
    mask = torch.zeros(NUM_GAMES, NUM_ACTIONS, dtype=torch.bool)
    for i, name in enumerate(GAME_NAMES):
        mask[i, list(MINIMAL_ACTION_SETS[name])] = True
    return mask


def reference_scores(game: str) -> ReferenceScores:
    """The game's random and human/DQN scores (either may be None); KeyError if it has none at all."""
    if check_game(game) not in REFERENCE_SCORES:
        missing = sorted(set(GAME_NAMES) - set(REFERENCE_SCORES))
        raise KeyError(f"No random/human/DQN reference scores for {game!r}; games without any: {missing}")
    return REFERENCE_SCORES[game]
