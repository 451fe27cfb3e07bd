"""The behaviour agents by name: stable-baselines3 PPO and DQN with networks and settings chosen for CPU speed.

On one CPU core the update dominates (docs in data/atari/README.md): the Nature CNN trains at about
730 samples/s, the 2013 DQN network (16 and 32 filters, 256 hidden units) at about 1700, while the env
steps at about 960/s. `ppo` therefore uses the small network and 3 epochs per rollout; `ppo-nature` is
the plain Atari PPO (Nature CNN, 4 epochs) for comparison. `dqn` is an ε-greedy DQN as DQN-Replay was
made: once ε has decayed, its logged action is its greedy one on ~99 % of the steps, which is what an
offline learner can read a policy from (PPO's logged actions keep most of the uniform entropy).
`dqn-nstep` adds 10-step returns, which is what made it learn within 20 minutes here (data/atari/README.md).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from stable_baselines3.common.vec_env.base_vec_env import VecEnv
from torch import nn

from jowa.behaviour.dqn import StepDQN


class SmallCNN(BaseFeaturesExtractor):
    """Mnih et al. 2013's network: conv 16×8×8/4, conv 32×4×4/2, linear 256 (~3× cheaper than Nature's)."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 256):
        super().__init__(observation_space, features_dim)
        channels = observation_space.shape[0]
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, 16, 8, stride=4), nn.ReLU(),
            nn.Conv2d(16, 32, 4, stride=2), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.cnn(torch.zeros(1, *observation_space.shape)).shape[1]  # 32·9·9 for 84×84
        self.linear = nn.Sequential(nn.Linear(flat, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations))


@dataclass(frozen=True)
class PPOSettings:
    """PPO hyperparameters (the Atari defaults of Schulman et al. unless said)."""

    network: str = "small"  # "small" (SmallCNN) or "nature" (NatureCNN)
    num_envs: int = 8
    n_steps: int = 128
    n_epochs: int = 3  # 4 in the paper; 3 trades a little sample efficiency for ~20 % more steps/s
    batch_size: int = 256
    learning_rate: float = 2.5e-4
    clip_range: float = 0.1
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    max_grad_norm: float = 0.5


@dataclass(frozen=True)
class DQNSettings:
    """DQN hyperparameters: Dopamine's Atari DQN (the DQN-Replay agent) shrunk to minutes of CPU time.

    Steps count agent steps (transitions, all envs). Dopamine: 1M buffer, 20k steps before learning,
    ε 1 → 0.01 over 250k steps, a target copy every 8k steps, one batch of 32 every 4 steps, lr 6.25e-5.
    """

    network: str = "small"
    num_envs: int = 8
    buffer_size: int = 100_000  # 4 stacked frames each: 2.8 GB
    learning_starts: int = 10_000
    exploration_initial_eps: float = 1.0
    exploration_final_eps: float = 0.01
    exploration_steps: int = 50_000
    target_update_interval: int = 2_000
    train_freq: int = 1  # env.step calls (num_envs transitions each) between updates
    gradient_steps: int = 1
    batch_size: int = 32
    learning_rate: float = 1e-4
    adam_eps: float = 1.5e-4  # Dopamine's
    gamma: float = 0.99
    max_grad_norm: float = 10.0
    n_steps: int = 1  # n-step returns (SB3's NStepReplayBuffer; it stores next observations too: 2× memory)


AgentSettings = PPOSettings | DQNSettings

AGENTS: dict[str, AgentSettings] = {
    "ppo": PPOSettings(),
    "ppo-nature": PPOSettings(network="nature", n_epochs=4),
    "dqn": DQNSettings(),
    "dqn-nstep": DQNSettings(n_steps=10),  # data-efficient DQNs bootstrap over many steps (ours, measured)
}
_NETWORKS: dict[str, tuple[type[BaseFeaturesExtractor], int]] = {"small": (SmallCNN, 256), "nature": (NatureCNN, 512)}
_ALGORITHMS: dict[type, type[BaseAlgorithm]] = {PPOSettings: PPO, DQNSettings: StepDQN}


def agent_settings(name: str, **overrides: Any) -> AgentSettings:
    """The named agent's settings, with `overrides` (e.g. num_envs=2 for a test); ValueError if unknown."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; known agents: {', '.join(AGENTS)}")
    base = AGENTS[name]
    return type(base)(**{**asdict(base), **overrides})


def make_agent(settings: AgentSettings, env: VecEnv, seed: int, device: str = "auto") -> BaseAlgorithm:
    """A fresh agent on `env` (its `num_envs` must equal settings.num_envs)."""
    extractor, features = _NETWORKS[settings.network]
    policy_kwargs: dict[str, Any] = {"features_extractor_class": extractor,
                                     "features_extractor_kwargs": {"features_dim": features}}
    kwargs = {k: v for k, v in asdict(settings).items() if k not in ("network", "num_envs", "adam_eps")}
    if isinstance(settings, DQNSettings):
        policy_kwargs["optimizer_kwargs"] = {"eps": settings.adam_eps}
        if settings.n_steps == 1:  # store only the stacked observations (next = the following row): half the memory
            kwargs.update(optimize_memory_usage=True, replay_buffer_kwargs={"handle_timeout_termination": False})
    return _ALGORITHMS[type(settings)]("CnnPolicy", env, seed=seed, device=device, verbose=0,
                                       policy_kwargs=policy_kwargs, **kwargs)


def load_agent(path: str, agent: str, env: VecEnv | None = None, device: str = "auto") -> BaseAlgorithm:
    """A saved agent of kind `agent` (`model.save` zip), attached to `env` to continue training when given."""
    algorithm = _ALGORITHMS[type(agent_settings(agent))]
    with warnings.catch_warnings():
        # A saved n-step DQN names its NStepReplayBuffer and keeps {"n_steps": n} in its buffer kwargs, so the
        # loaded buffer is n-step; SB3 still warns that `n_steps` "is ignored".
        warnings.filterwarnings("ignore", message="`n_steps=.*` is ignored", category=UserWarning)
        return algorithm.load(path, env=env, device=device)
