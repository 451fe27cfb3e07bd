"""A trained behaviour agent as a `jowa.envs.Policy`: u8[N, 84, 84] frames in, full-set actions out.

The agent was trained on 4 stacked frames of one game; the policy keeps each env's last 4 frames (reset
where `starts` is True, the first frame repeated as the training env did) and maps the agent's
minimal-set action to the full set. Use it in `collect.py --policy behaviour:RUN_DIR` or in reports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from jowa.behaviour.agents import load_agent
from jowa.behaviour.dqn import StepDQN
from jowa.behaviour.train import AGENT_DIR, FINAL_AGENT, STATE_NAME
from jowa.behaviour.vec_env import STACK
from jowa.games import minimal_to_full, task_id


class BehaviourPolicy:
    """Samples the agent's action distribution (or its argmax with `deterministic=True`).

    PPO's distribution is its policy head's; DQN's is ε-greedy on its Q-values with the ε it ended with.
    """

    def __init__(self, agent_path: str | os.PathLike, game: str, *, agent: str = "ppo", seed: int = 0,
                 deterministic: bool = False, device: str = "cpu"):
        self.model = load_agent(str(agent_path), agent, device=device)
        self.game = game
        self.task = task_id(game)
        self.to_full = np.asarray(minimal_to_full(game), dtype=np.int64)
        self.deterministic = deterministic
        self.generator = torch.Generator().manual_seed(seed)
        self._stack: np.ndarray | None = None

    def __call__(self, observations: np.ndarray, tasks: np.ndarray, masks: np.ndarray, starts: np.ndarray) -> np.ndarray:
        if np.any(np.asarray(tasks) != self.task):
            raise ValueError(f"this behaviour agent plays {self.game} only")
        frames = np.asarray(observations, dtype=np.uint8)
        if self._stack is None or len(self._stack) != len(frames):
            self._stack = np.repeat(frames[:, None], STACK, axis=1)
        else:
            self._stack = np.concatenate([self._stack[:, 1:], frames[:, None]], axis=1)
            fresh = np.asarray(starts, dtype=bool)
            self._stack[fresh] = frames[fresh][:, None]
        probs = self.probabilities(self._stack)
        if self.deterministic:
            minimal = probs.argmax(dim=1)
        else:
            minimal = torch.multinomial(probs.cpu(), 1, generator=self.generator)[:, 0]
        return self.to_full[minimal.cpu().numpy()]

    def probabilities(self, stacks: np.ndarray) -> torch.Tensor:
        """u8 [N, 4, 84, 84] stacked frames (oldest first) -> [N, A] the agent's minimal-set action probabilities."""
        policy = self.model.policy
        with torch.no_grad():
            obs, _ = policy.obs_to_tensor(stacks)
            if isinstance(self.model, StepDQN):
                q = policy.q_net(obs)
                eps = float(self.model.exploration_rate)
                greedy = torch.nn.functional.one_hot(q.argmax(dim=1), q.shape[1]).to(q.dtype)
                return eps / q.shape[1] + (1.0 - eps) * greedy
            return policy.get_distribution(obs).distribution.probs


def load_behaviour_policy(run_dir: str | os.PathLike, *, seed: int = 0, deterministic: bool = False,
                          device: str = "cpu") -> BehaviourPolicy:
    """The final agent of a behaviour run `{out}/{Game}/{run}` (its newest checkpoint if unfinished)."""
    run_dir = Path(run_dir)
    state = run_dir / STATE_NAME
    if not state.is_file():
        raise FileNotFoundError(f"{run_dir}: no {STATE_NAME}; not a behaviour run")
    config = json.loads(state.read_text())["config"]
    agent = run_dir / AGENT_DIR / FINAL_AGENT
    if not agent.is_file():
        agent = run_dir / AGENT_DIR / "latest.zip"
    return BehaviourPolicy(agent, config["game"], agent=config["agent"], seed=seed, deterministic=deterministic,
                           device=device)
