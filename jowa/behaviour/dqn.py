"""stable-baselines3's DQN bent to open-ended, resumable runs that log their play.

Three changes, each because a behaviour run differs from SB3's fixed-length training:
- ε decays linearly over `exploration_steps` agent steps. SB3 decays it over a fraction of `total_timesteps`,
  and a behaviour run calls `learn` with an open-ended total (it stops on its own budget or clock).
- ε is drawn per env. SB3 draws one coin for the whole batch of envs, so all 8 envs explore at once.
- No update until the replay buffer holds `learning_starts` transitions. SB3 compares `learning_starts` with
  `num_timesteps`, so a resumed run, whose buffer starts empty (it is not checkpointed: 2.8 GB at 100k),
  would learn at once from a handful of transitions. Acting stays ε-greedy meanwhile, so the log does not
  gain a burst of random play at each resume.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3 import DQN


class StepDQN(DQN):
    def __init__(self, *args: Any, exploration_steps: int = 50_000, **kwargs: Any):
        self.exploration_steps = exploration_steps
        super().__init__(*args, **kwargs)

    def epsilon(self) -> float:
        """ε after `num_timesteps` agent steps."""
        done = min(self.num_timesteps / max(self.exploration_steps, 1), 1.0)
        return self.exploration_initial_eps + done * (self.exploration_final_eps - self.exploration_initial_eps)

    def _on_step(self) -> None:
        super()._on_step()
        self.exploration_rate = self.epsilon()

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, Any]:
        actions, state = self.policy.predict(observation, state, episode_start, deterministic=True)
        if not deterministic:
            actions = np.asarray(actions).copy()
            explore = np.random.random(actions.shape) < self.exploration_rate  # SB3 seeds np.random
            actions[explore] = np.random.randint(self.action_space.n, size=int(explore.sum()))
        return actions, state

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        if self.replay_buffer.size() * self.n_envs < self.learning_starts:
            return
        super().train(gradient_steps, batch_size)
