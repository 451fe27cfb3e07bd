"""`accelerate launch plan.py …`: two CPU processes split the slot groups and write the report one process writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from jowa.evaluation.processes import Processes
from jowa.evaluation.protocols import get_protocol
from jowa.evaluation.rollouts import RandomActor, play

REPO = Path(__file__).resolve().parent.parent



# --multi_gpu is accelerate's multi-process (torchrun) launcher, which on a machine without a GPU starts CPU
# processes; `--cpu` would start one process.
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
          "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]


def plan(launcher: list[str], run: Path, out: Path, script: list[str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess:
    # --envs 1: one slot group per game, so each of the two processes plays one game. Assault and Boxing
    # score within 30 steps, so the returns compared are not all zero.
    args = ["--run", str(run), "--games", "Assault,Boxing", "--episodes", "2", "--envs", "1", "--max-steps", "30",
            "--greedy", "--random-baseline", "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([*launcher, *(script or [str(REPO / "plan.py")]), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


class _Rank(Processes):
    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world


def test_each_slot_group_plays_the_same_whoever_plays_the_others() -> None:
    protocol = replace(get_protocol("jowa"), max_episode_steps=30)
    games = ["Assault", "Boxing", "Pong"]

    def episodes(owned=None) -> list:
        return play(games, 2, protocol, 1, lambda slots: RandomActor(slots, 0), 0, progress=False, owned=owned).episodes

    alone = episodes()
    shares = [episodes(_Rank(rank, 2).owns) for rank in (0, 1)]
    assert {e[1] for e in shares[0]} == {"Assault", "Pong"} and {e[1] for e in shares[1]} == {"Boxing"}
    assert sorted(shares[0] + shares[1], key=lambda e: e[0]) == alone
    assert len({e[2] for e in alone}) > 1  # real returns, not all the same


def test_two_processes_write_the_single_process_report(small_run, tmp_path) -> None:
    pytest.importorskip("accelerate", reason="accelerate is not installed: multi-process evaluation needs it")
    started = time.monotonic()
    single = plan([sys.executable], small_run, tmp_path / "single")
    assert single.returncode == 0, single.stderr
    launch = LAUNCH
    double = plan(launch, small_run, tmp_path / "double")
    assert double.returncode == 0, double.stderr
    assert double.stdout.count("report: ") == 1  # rank 0 alone reports
    one, two = (json.loads((tmp_path / name / "report.json").read_text()) for name in ("single", "double"))
    for side in ("results", "baseline"):
        games = two[side]["games"]
        assert sorted(games) == ["Assault", "Boxing"] and all(len(games[g]["returns"]) == 2 for g in games)
        assert games == one[side]["games"]  # returns per game and episode, and every metric
    assert two["results"] == one["results"] and two["baseline"] == one["baseline"]
    assert two["settings"] == one["settings"]
    assert len({r for g in one["baseline"]["games"].values() for r in g["returns"]}) > 1  # not all zero
    logs = [(tmp_path / name / "episodes.jsonl").read_text() for name in ("single", "double")]
    assert logs[0] == logs[1]  # the same episodes, in the same (canonical) order
    again = plan(launch, small_run, tmp_path / "double")  # a rerun replays nothing already recorded
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "double" / "episodes.jsonl").read_text() == logs[1]
    print(f"single + 2 launches: {time.monotonic() - started:.1f}s")


@pytest.mark.parametrize("failure, line", [
    ("raise", "process 1 failed: RuntimeError: injected failure on process 1"),
    ("bad-input", "process 1 ended early (exit status 2)"),
])
def test_a_failing_process_ends_every_process(small_run, tmp_path, failure: str, line: str) -> None:
    """Process 1 fails as evaluation starts; process 0, waiting in a collective, ends too and says why."""
    pytest.importorskip("accelerate", reason="accelerate is not installed: multi-process evaluation needs it")
    script = [str(REPO / "tests" / "scripts" / "plan_failing_rank.py"), failure]
    started = time.monotonic()
    result = plan(LAUNCH, small_run, tmp_path / "out", script, timeout=120)  # a hang raises TimeoutExpired
    assert result.returncode != 0
    assert f"error: {line}" in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "out" / "report.json").exists()
    print(f"{failure}: both processes ended in {time.monotonic() - started:.1f}s")
