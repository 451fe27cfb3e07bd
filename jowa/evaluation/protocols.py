"""Evaluation protocols: how episodes are played (sticky actions, ε, episode cap)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    name: str
    sticky: float  # ALE repeat_action_probability per frame
    epsilon: float  # probability of a uniformly random valid action per agent step
    max_episode_steps: int  # agent steps (4 frames each)
    description: str


PROTOCOLS: dict[str, Protocol] = {
    "jowa": Protocol(
        "jowa", sticky=0.0, epsilon=0.001, max_episode_steps=108_000,
        description="the paper's protocol: no sticky actions, ε = 0.001, cap 108,000 agent steps "
                    "(432,000 frames), no no-op starts (docs/official_jowa.md §8.1)",
    ),
    "standard": Protocol(
        "standard", sticky=0.25, epsilon=0.001, max_episode_steps=27_000,
        description="the standard ALE protocol (Machado et al.): sticky actions 0.25, ε = 0.001, "
                    "cap 108,000 frames (27,000 agent steps), no no-op starts",
    ),
}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"Unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
