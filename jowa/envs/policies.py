"""Data-collection policies: full-set actions for a batch of envs, pluggable by name or import path.

A policy is any callable `policy(observations, tasks, masks, starts) -> actions`:
observations u8[N, 84, 84], tasks int64[N] (jowa.games task ids), masks bool[N, 18] (valid full actions),
starts bool[N] (True where the observation is the first of an episode, so a stateful agent can reset
its context) → int64[N] full-set actions. `load_policy("random")` or `load_policy("pkg.module:factory")`,
where `factory(seed=...)` returns such a callable (e.g. an ε-greedy agent loaded from a checkpoint), or
`load_policy("behaviour:RUN_DIR")`, the final agent of a behaviour run (jowa.behaviour).
"""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np


class Policy(Protocol):
    def __call__(
        self, observations: np.ndarray, tasks: np.ndarray, masks: np.ndarray, starts: np.ndarray
    ) -> np.ndarray: ...


class RandomPolicy:
    """Uniform over each env's valid full actions; deterministic for a seed."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def __call__(
        self, observations: np.ndarray, tasks: np.ndarray, masks: np.ndarray, starts: np.ndarray
    ) -> np.ndarray:
        counts = masks.sum(axis=1)  # [N] valid actions per env
        pick = (self.rng.random(len(masks)) * counts).astype(np.int64)  # [N] rank among the valid ones
        # Full index of the pick-th valid action: first column where the running count exceeds pick.
        return np.argmax(np.cumsum(masks, axis=1) > pick[:, None], axis=1).astype(np.int64)


def load_policy(spec: str, seed: int = 0) -> Policy:
    """'random', 'behaviour:RUN_DIR' or 'package.module:factory' with factory(seed=...) -> Policy."""
    if spec == "random":
        return RandomPolicy(seed)
    if spec.startswith("behaviour:"):  # imported here: jowa.envs stays free of stable-baselines3
        from jowa.behaviour.policy import load_behaviour_policy

        try:
            return load_behaviour_policy(spec.split(":", 1)[1], seed=seed)
        except FileNotFoundError as exc:
            raise ValueError(f"Cannot load policy {spec!r}: {exc}") from exc
    if ":" not in spec:
        raise ValueError(f"Unknown policy {spec!r}: use 'random', 'behaviour:RUN_DIR' or 'package.module:factory'")
    module_name, attr = spec.split(":", 1)
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"Cannot load policy factory {spec!r}: {exc}") from exc
    return factory(seed=seed)
