"""Acting in the learned model: planners behind one interface (greedy, beam search, MCTS), the agent's token memory."""

from jowa.planning.beam_search import BeamSearch, PlanResult, plan
from jowa.planning.greedy import Greedy
from jowa.planning.mcts import MCTS
from jowa.planning.planner import Decision, Planner, PlannerSettings
from jowa.planning.registry import PLANNERS, make_planner

__all__ = ["BeamSearch", "Decision", "Greedy", "MCTS", "PLANNERS", "Planner", "PlannerSettings",
           "PlanResult", "make_planner", "plan"]
