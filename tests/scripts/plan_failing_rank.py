"""plan.py under `accelerate launch` with process 1 failing as evaluation starts (tests/test_evaluation_accelerate.py).

    accelerate launch … tests/scripts/plan_failing_rank.py raise|bad-input PLAN_ARGS…
raise: process 1 raises a RuntimeError (plan.py's uncaught path); bad-input: a ValueError, which plan.py turns
into exit status 2 on that process alone. Either way every process must end, none wait in a collective.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import plan  # noqa: E402

real_evaluate_run = plan.evaluate_run


def failing_evaluate_run(*args, processes, **kwargs):
    if processes.rank == 1:
        error = RuntimeError if sys.argv[1] == "raise" else ValueError
        raise error("injected failure on process 1")
    return real_evaluate_run(*args, processes=processes, **kwargs)


if __name__ == "__main__":
    plan.evaluate_run = failing_evaluate_run
    sys.exit(plan.main(sys.argv[2:]))
