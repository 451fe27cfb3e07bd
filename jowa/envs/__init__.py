"""Atari environments with the Dopamine/JOWA preprocessing, their vector form and data-collection policies."""

from jowa.envs.atari import FullActionSpace, make_env
from jowa.envs.policies import Policy, RandomPolicy, load_policy
from jowa.envs.vector import make_vector_env, valid_action_masks

__all__ = [
    "FullActionSpace", "make_env", "Policy", "RandomPolicy", "load_policy", "make_vector_env",
    "valid_action_masks",
]
