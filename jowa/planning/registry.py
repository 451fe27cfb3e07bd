"""Planners by name: adding one is a file with a `Planner` dataclass and a `build`, plus one line here."""

from __future__ import annotations

from typing import Callable

from jowa.planning import beam_search, greedy, mcts
from jowa.planning.planner import Planner, PlannerSettings

PLANNERS: dict[str, Callable[[PlannerSettings], Planner]] = {
    "beam": beam_search.build,
    "greedy": greedy.build,
    "mcts": mcts.build,
}


def make_planner(name: str, settings: PlannerSettings | None = None) -> Planner:
    """The planner `name` built from command-line / evaluation-config values, validated."""
    if name not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}; choose from {sorted(PLANNERS)}")
    settings = settings or PlannerSettings()
    if settings.return_lambda != 1.0 and name != "beam":
        raise ValueError(f"return lambda {settings.return_lambda:g} is beam search's score; "
                         f"the {name} planner has none")
    planner = PLANNERS[name](settings)
    planner.validate()
    return planner
