"""One game's vector env as a stable-baselines3 `VecEnv` that records every transition the agent takes.

The agent sees 4 stacked frames u8[4, 84, 84] and acts with minimal-set indices; learning signals are
clipped rewards and a `done` on every life loss (the "episodic life" trick, which speeds learning). The
record is what DQN-Replay stored: the raw 84×84 frame the action was taken on, the minimal-set action,
the clipped reward and a terminal only at game over (or the 27k-step cap), one whole episode at a time.

Finished episodes wait in `finished` until the trainer moves them into the replay log. Once `budget`
transitions are finished the env stops recording: the episode that would cross the budget is cut there
and marked terminal (as `jowa.data.collect` does), the other episodes in progress are dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from jowa.envs.atari import DOPAMINE_MAX_EPISODE_STEPS
from jowa.envs.vector import make_vector_env
from jowa.games import check_game, minimal_to_full

STACK = 4


@dataclass
class Episode:
    """One recorded episode: frames u8[n, 84, 84], minimal actions, raw rewards, how it ended."""

    frames: list[np.ndarray] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    end: str = ""  # "game_over", "step_cap" or "budget_cut"
    agent_step: int = 0  # agent steps (all envs) when it ended
    wall_seconds: float = 0.0  # the env's clock when it ended

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def raw_return(self) -> float:
        return float(np.sum(self.rewards))


class RecordingVecEnv(VecEnv):
    """`num_envs` copies of `game` stepped together (SAME_STEP auto-reset underneath)."""

    def __init__(
        self,
        game: str,
        num_envs: int,
        *,
        seed: int,
        budget: int,
        sticky: float = 0.25,
        max_episode_steps: int = DOPAMINE_MAX_EPISODE_STEPS,
        life_loss_done: bool = True,
        asynchronous: bool = False,
    ):
        self.game = check_game(game)
        self.envs = make_vector_env([self.game] * num_envs, sticky=sticky, max_episode_steps=max_episode_steps,
                                    asynchronous=asynchronous)
        self.to_full = np.asarray(minimal_to_full(self.game), dtype=np.int64)  # minimal index → full action
        self.render_mode = None  # (SB3 asks)
        observation_space = gym.spaces.Box(0, 255, (STACK, 84, 84), dtype=np.uint8)
        super().__init__(num_envs, observation_space, gym.spaces.Discrete(len(self.to_full)))
        self.seed_value = seed
        self.budget = budget  # transitions still to record (finished + future)
        self.life_loss_done = life_loss_done
        self.finished: list[Episode] = []
        self.recording = budget > 0
        self.agent_steps = 0  # steps taken by this object (all envs)
        self.clock: Callable[[], float] = time.perf_counter  # the trainer sets its training wall clock
        self.dropped_steps = 0  # recorded steps thrown away (episodes in progress when recording stopped)
        self._episodes = [Episode() for _ in range(num_envs)]
        self._stack = np.zeros((num_envs, STACK, 84, 84), dtype=np.uint8)
        self._lives = np.zeros(num_envs, dtype=np.int64)
        self._actions = np.zeros(num_envs, dtype=np.int64)

    # --- VecEnv API ---

    def reset(self) -> np.ndarray:
        frames, info = self.envs.reset(seed=self.seed_value)
        self._stack[:] = frames[:, None]
        self._lives[:] = info["lives"]
        self._episodes = [Episode() for _ in range(self.num_envs)]
        return self._stack.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        acted_on = self._stack[:, -1].copy()  # the frame each action was taken on (what the log stores)
        frames, rewards, terminated, truncated, info = self.envs.step(self.to_full[self._actions])
        self.agent_steps += self.num_envs
        ended = terminated | truncated
        lives = np.asarray(info["lives"])
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        dones = ended.copy()
        for i in range(self.num_envs):
            if self.recording:
                self._record(i, acted_on[i], int(self._actions[i]), float(rewards[i]), bool(terminated[i]),
                             bool(truncated[i]))
            if ended[i]:
                final = info["final_obs"][i]
                stacked = np.concatenate([self._stack[i, 1:], final[None]])
                infos[i]["terminal_observation"] = stacked
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                self._stack[i] = frames[i][None]
            else:
                self._stack[i] = np.concatenate([self._stack[i, 1:], frames[i][None]])
                if self.life_loss_done and lives[i] < self._lives[i]:
                    dones[i] = True  # a learning signal only: the game and its record go on
                    infos[i]["terminal_observation"] = self._stack[i].copy()
            self._lives[i] = lives[i]
        clipped = np.sign(rewards).astype(np.float32)
        return self._stack.copy(), clipped, dones, infos

    def close(self) -> None:
        self.envs.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        raise NotImplementedError("RecordingVecEnv has no per-env methods")

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    # --- recording ---

    def take_finished(self) -> list[Episode]:
        """The episodes finished since the last call, in the order they ended."""
        done, self.finished = self.finished, []
        return done

    def in_progress_steps(self) -> int:
        return sum(len(e) for e in self._episodes)

    def stop_recording(self) -> None:
        """Drop the episodes in progress (a log holds whole episodes only)."""
        self.dropped_steps += self.in_progress_steps()
        self._episodes = [Episode() for _ in range(self.num_envs)]
        self.recording = False

    def _record(self, i: int, frame: np.ndarray, action: int, reward: float, over: bool, capped: bool) -> None:
        episode = self._episodes[i]
        episode.frames.append(frame)
        episode.actions.append(action)
        episode.rewards.append(reward)
        if over or capped or len(episode) >= self.budget:
            self._finish(i, "game_over" if over else "step_cap" if capped else "budget_cut")

    def _finish(self, i: int, end: str) -> None:
        episode = self._episodes[i]
        episode.end, episode.agent_step, episode.wall_seconds = end, self.agent_steps, self.clock()
        self.finished.append(episode)
        self.budget -= len(episode)
        self._episodes[i] = Episode()
        longer = [j for j, e in enumerate(self._episodes) if self.budget > 0 and len(e) >= self.budget]
        if longer:  # another episode in progress already fills the rest: cut it to exactly the budget
            j, keep = longer[0], self.budget
            cut = self._episodes[j]
            cut.frames, cut.actions, cut.rewards = cut.frames[:keep], cut.actions[:keep], cut.rewards[:keep]
            self._finish(j, "budget_cut")
        elif self.budget <= 0 and self.recording:
            self.stop_recording()
