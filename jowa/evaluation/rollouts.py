"""Play whole episodes of many games at once: vector ALE environments driven by a batched actor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol as TypingProtocol

import numpy as np
import torch
from tqdm import tqdm

from jowa.envs import make_vector_env, valid_action_masks
from jowa.evaluation.protocols import Protocol


class Actor(TypingProtocol):
    """Chooses full-set actions for some of the environment slots; keeps per-slot state."""

    def act(self, frames: np.ndarray, slots: list[int]) -> np.ndarray: ...  # u8 [N, 84, 84] -> int64 [N]

    def reset(self, slots: list[int]) -> None: ...


class RandomActor:
    """Uniform over each slot's valid actions: the baseline every report compares with."""

    def __init__(self, games: list[str], seed: int = 0) -> None:
        self.masks = valid_action_masks(games)  # [E, 18]
        self.rng = np.random.default_rng(seed)

    def act(self, frames: np.ndarray, slots: list[int]) -> np.ndarray:
        masks = self.masks[slots]
        pick = (self.rng.random(len(slots)) * masks.sum(1)).astype(np.int64)
        return np.argmax(np.cumsum(masks, axis=1) > pick[:, None], axis=1)

    def reset(self, slots: list[int]) -> None:
        pass


class AgentActor:
    """The planning agent (jowa.planning.agent.Agent) behind the Actor interface."""

    def __init__(self, agent) -> None:
        self.agent = agent

    def act(self, frames: np.ndarray, slots: list[int]) -> np.ndarray:
        device = next(self.agent.tokenizer.parameters()).device
        return self.agent.act(torch.from_numpy(frames).to(device), slots).numpy()

    def reset(self, slots: list[int]) -> None:
        self.agent.reset(slots)

    def reconstruction(self, slot: int) -> np.ndarray:
        """u8 [84, 84]: the current frame as the model sees it (decoded from its 36 tokens)."""
        tokens = self.agent.memory[slot][-(self.agent.model.config.tokens_per_block):-1]
        frame = self.agent.tokenizer.decode_tokens(tokens.to(next(self.agent.tokenizer.parameters()).device))
        return (frame.clamp(0, 1)[0] * 255).round().byte().cpu().numpy()


@dataclass
class RolloutResult:
    returns: dict[str, list[float]] = field(default_factory=dict)  # raw undiscounted returns per game
    lengths: dict[str, list[int]] = field(default_factory=dict)  # agent steps per episode
    videos: dict[str, np.ndarray] = field(default_factory=dict)  # u8 [n, 84, W] first episode per game


def allocate_slots(games: list[str], episodes: int, num_envs: int) -> list[list[str]]:
    """Groups of slot games: every game gets up to `episodes` slots, round-robin, ≤ num_envs per group."""
    groups, pending = [], list(games)
    while pending:
        per_group = pending[:num_envs]
        pending = pending[num_envs:]
        slots = [g for _ in range(episodes) for g in per_group][:num_envs]
        groups.append(slots)
    return groups


def play(
    games: list[str], episodes: int, protocol: Protocol, num_envs: int, make_actor, seed: int = 0,
    video_frames: int = 0, progress: bool = True, desc: str = "episodes",
) -> RolloutResult:
    """Play `episodes` episodes of every game. `make_actor(slot_games) -> Actor` builds the actor for
    one group of slots. `video_frames` > 0 records up to that many frames of each game's first episode."""
    result = RolloutResult({g: [] for g in games}, {g: [] for g in games})
    bar = tqdm(total=len(games) * episodes, desc=desc, unit="ep", disable=not progress, dynamic_ncols=True)
    for group_index, slot_games in enumerate(allocate_slots(games, episodes, num_envs)):
        _play_group(slot_games, episodes, protocol, make_actor(slot_games), seed + 1000 * group_index,
                    video_frames, result, bar)
    bar.close()
    return result


def _play_group(slot_games, episodes, protocol, actor, seed, video_frames, result, bar) -> None:
    env = make_vector_env(slot_games, sticky=protocol.sticky, max_episode_steps=protocol.max_episode_steps)
    try:
        observations, _ = env.reset(seed=seed)
        count = len(slot_games)
        started = {g: slot_games.count(g) for g in set(slot_games)}
        active = np.ones(count, dtype=bool)
        running = np.zeros(count)
        steps = np.zeros(count, dtype=np.int64)
        recording = {slot_games.index(g): g for g in set(slot_games) if video_frames > 0 and g not in result.videos}
        frames: dict[int, list[np.ndarray]] = {slot: [] for slot in recording}
        while active.any():
            slots = np.flatnonzero(active).tolist()
            actions = np.zeros(count, dtype=np.int64)
            actions[slots] = actor.act(observations[slots], slots)
            for slot in list(recording):
                if len(frames[slot]) < video_frames:
                    frames[slot].append(_video_frame(actor, observations[slot], slot))
            observations, rewards, terminated, truncated, _ = env.step(actions)
            running += rewards
            steps += 1
            for slot in np.flatnonzero((terminated | truncated) & active):
                game = slot_games[slot]
                result.returns[game].append(float(running[slot]))
                result.lengths[game].append(int(steps[slot]))
                running[slot], steps[slot] = 0.0, 0
                actor.reset([int(slot)])
                if slot in recording:
                    result.videos[recording.pop(slot)] = np.stack(frames.pop(slot))
                if started[game] < episodes:
                    started[game] += 1  # the slot goes on with the next episode (auto-reset)
                else:
                    active[slot] = False
                bar.update(1)
                bar.set_postfix({g[:10]: f"{np.mean(r):.1f}" for g, r in result.returns.items() if r})
    finally:
        env.close()


def _video_frame(actor, observation: np.ndarray, slot: int) -> np.ndarray:
    """The real frame, beside the model's view of it when the actor has a tokenizer."""
    if isinstance(actor, AgentActor):
        return np.concatenate([observation, actor.reconstruction(slot)], axis=1)
    return observation
