"""Play whole episodes of many games at once: vector ALE environments driven by a batched actor."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol as TypingProtocol

import numpy as np
import torch
from tqdm import tqdm

from jowa.envs import make_vector_env, valid_action_masks
from jowa.evaluation.protocols import Protocol
from jowa.games import NUM_ACTIONS


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
    stopped: bool = False  # a stop was requested before every episode finished
    # (slot group, game, return, steps, action counts) in the order they ended: what multi-process evaluation merges
    episodes: list[tuple[int, str, float, int, list[int]]] = field(default_factory=list)


# (game, return, agent steps, how often each full-set action was played), called as each episode ends
OnEpisode = Callable[[str, float, int, list[int]], None]


@dataclass
class _Play:
    """What one `play` call shares across its slot groups."""

    episodes: dict[str, int]
    result: RolloutResult
    bar: tqdm
    video_frames: int
    on_episode: OnEpisode | None
    should_stop: Callable[[], bool] | None
    steps_done: int = 0
    group: int = 0  # the slot group being played
    started_at: float = field(default_factory=time.perf_counter)
    shown_at: float = 0.0


def allocate_slots(games: list[str], episodes: int | Mapping[str, int], num_envs: int) -> list[list[str]]:
    """Groups of slot games: every game gets up to its episode count of slots, round-robin, ≤ num_envs per group."""
    counts = {g: episodes if isinstance(episodes, int) else episodes[g] for g in games}
    groups, pending = [], [g for g in games if counts[g] > 0]
    while pending:
        per_group = pending[:num_envs]
        pending = pending[num_envs:]
        slots = [g for i in range(max(counts[g] for g in per_group)) for g in per_group if i < counts[g]][:num_envs]
        groups.append(slots)
    return groups


def play(
    games: list[str], episodes: int | Mapping[str, int], protocol: Protocol, num_envs: int, make_actor,
    seed: int = 0, video_frames: int = 0, progress: bool = True, desc: str = "episodes",
    on_episode: OnEpisode | None = None, should_stop: Callable[[], bool] | None = None,
    owned: Callable[[int], bool] | None = None,
) -> RolloutResult:
    """Play `episodes` episodes of every game (an int, or a count per game). `make_actor(slot_games) -> Actor`
    builds the actor for one group of slots. `video_frames` > 0 records up to that many frames of each game's
    first episode. `on_episode` sees every episode as it ends; once `should_stop()` is true, play returns
    with the episodes finished so far (`stopped` set). `owned(group)` false skips that slot group: each
    group has its own seed and actor, so a process playing some groups gets what a single process gets there."""
    counts = {g: episodes if isinstance(episodes, int) else int(episodes[g]) for g in games}
    groups = [(i, slots) for i, slots in enumerate(allocate_slots(games, counts, num_envs))
              if owned is None or owned(i)]
    total = sum(counts[g] for _, slots in groups for g in set(slots))  # a game's episodes are all in one group
    state = _Play(counts, RolloutResult({g: [] for g in games}, {g: [] for g in games}),
                  tqdm(total=total, desc=desc, unit="ep", disable=not progress, dynamic_ncols=True),
                  video_frames, on_episode, should_stop)
    for group_index, slot_games in groups:
        state.group = group_index
        _play_group(slot_games, protocol, make_actor(slot_games), seed + 1000 * group_index, state)
        if state.result.stopped:
            break
    state.bar.close()
    return state.result


def _play_group(slot_games: list[str], protocol: Protocol, actor: Actor, seed: int, state: _Play) -> None:
    env = make_vector_env(slot_games, sticky=protocol.sticky, max_episode_steps=protocol.max_episode_steps)
    result, bar, video_frames = state.result, state.bar, state.video_frames
    try:
        observations, _ = env.reset(seed=seed)
        count = len(slot_games)
        started = {g: slot_games.count(g) for g in set(slot_games)}
        active = np.ones(count, dtype=bool)
        running = np.zeros(count)
        steps = np.zeros(count, dtype=np.int64)
        played = np.zeros((count, NUM_ACTIONS), dtype=np.int64)  # per slot: what the agent does, not only its score
        recording = {slot_games.index(g): g for g in set(slot_games) if video_frames > 0 and g not in result.videos}
        frames: dict[int, list[np.ndarray]] = {slot: [] for slot in recording}
        while active.any():
            if state.should_stop is not None and state.should_stop():
                result.stopped = True
                return
            slots = np.flatnonzero(active).tolist()
            actions = np.zeros(count, dtype=np.int64)
            actions[slots] = actor.act(observations[slots], slots)
            played[slots, actions[slots]] += 1
            for slot in list(recording):
                if len(frames[slot]) < video_frames:
                    frames[slot].append(_video_frame(actor, observations[slot], slot))
            observations, rewards, terminated, truncated, _ = env.step(actions)
            running += rewards
            steps += active
            state.steps_done += len(slots)
            _show_speed(state, int(steps[active].max()))
            for slot in np.flatnonzero((terminated | truncated) & active):
                game = slot_games[slot]
                result.returns[game].append(float(running[slot]))
                result.lengths[game].append(int(steps[slot]))
                counts = played[slot].tolist()
                result.episodes.append((state.group, game, float(running[slot]), int(steps[slot]), counts))
                if state.on_episode is not None:
                    state.on_episode(game, float(running[slot]), int(steps[slot]), counts)
                running[slot], steps[slot], played[slot] = 0.0, 0, 0
                actor.reset([int(slot)])
                if slot in recording:
                    result.videos[recording.pop(slot)] = np.stack(frames.pop(slot))
                if started[game] < state.episodes[game]:
                    started[game] += 1  # the slot goes on with the next episode (auto-reset)
                else:
                    active[slot] = False
                bar.update(1)
    finally:
        env.close()


def _show_speed(state: _Play, longest: int) -> None:
    """Agent steps/s, the longest running episode and each game's mean return, at most once a second: an
    agent that never ends an episode (Breakout without FIRE) shows as steps, not as a stuck 0/N."""
    now = time.perf_counter()
    if now - state.shown_at < 1.0:
        return
    state.shown_at = now
    rate = state.steps_done / max(now - state.started_at, 1e-9)
    means = {g[:10]: f"{np.mean(r):.1f}" for g, r in state.result.returns.items() if r}
    state.bar.set_postfix({"steps/s": f"{rate:.0f}", "longest": longest, **means}, refresh=True)


def _video_frame(actor, observation: np.ndarray, slot: int) -> np.ndarray:
    """The real frame, beside the model's view of it when the actor has a tokenizer."""
    if isinstance(actor, AgentActor):
        return np.concatenate([observation, actor.reconstruction(slot)], axis=1)
    return observation
