"""Acting in the learned model: batched beam search, greedy acting, the agent's token memory."""

from jowa.planning.beam_search import PlannerOptions, PlanResult, plan

__all__ = ["PlannerOptions", "PlanResult", "plan"]
