"""Behaviour data from learning agents: train an online agent per game and log its play as DQN-Replay runs."""

from jowa.behaviour.agents import AGENTS, AgentSettings, DQNSettings, PPOSettings, agent_settings
from jowa.behaviour.curve import BehaviourSummary, behaviour_summary, capped_data_mean
from jowa.behaviour.policy import BehaviourPolicy, load_behaviour_policy
from jowa.behaviour.train import RunConfig, train_run

__all__ = [
    "AGENTS", "AgentSettings", "DQNSettings", "PPOSettings", "agent_settings", "BehaviourSummary",
    "behaviour_summary", "capped_data_mean", "BehaviourPolicy", "load_behaviour_policy", "RunConfig", "train_run",
]
