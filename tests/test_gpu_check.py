"""benchmarks/gpu_check.sh on a CPU machine: its dry run lists every step, validates its training overrides and
stops with a clear message and exit status 3 because CUDA is missing; the report writes only measured values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
sys.path.insert(0, str(REPO))

from benchmarks import gpu_report  # noqa: E402

STEPS = ["install", "cuda", "collect", "tokenizer", "tokenize", "world", "resume", "deepspeed", "train_step",
         "planning", "agreement", "report"]


def test_the_script_parses() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    assert os.access(SCRIPT, os.X_OK)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the dry run passes where CUDA is present")
def test_dry_run_lists_every_step_and_fails_clearly_without_cuda(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}
    done = subprocess.run([str(SCRIPT), "--dry-run", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == gpu_report.NO_CUDA_EXIT, done.stderr
    listed = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("[dry-run] ")]
    assert listed == STEPS
    assert done.stdout.count("parse and validate") == 4
    assert "gpu_check: CUDA is missing:" in done.stderr and "Nothing was run." in done.stderr
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_a_bad_override_fails_the_check() -> None:
    with pytest.raises(KeyError):
        gpu_report.check_overrides(["world.no_such_key=1"])
    with pytest.raises(ValueError, match="critic_start"):
        gpu_report.check_overrides(["world.steps=2", "world.critic_start=5"])


def test_unknown_arguments_are_refused() -> None:
    done = subprocess.run([str(SCRIPT), "--fast"], capture_output=True, text=True)
    assert done.returncode == 2 and "unknown argument --fast" in done.stderr


def test_the_report_holds_what_was_measured_and_says_what_was_not(tmp_path: Path) -> None:
    (tmp_path / "steps.jsonl").write_text(json.dumps({"name": "world", "status": "ok", "seconds": 12.5}) + "\n")
    (tmp_path / "planning.md").write_text("**t**\n\n| size | E | batched |\n|---|---:|---:|\n| 40M | 16 | 1,234 |\n")
    result = gpu_report.collect(tmp_path)
    assert result["planning"] == [{"size": "40M", "E": "16", "batched": "1,234"}]
    assert result["train_step"] is None and result["token_agreement"] is None
    text = gpu_report.render({**result, "gpu": "Some GPU"}, "benchmarks/gpu_check.sh")
    assert text.startswith("## GPU: Some GPU\n") and "| world | ok | 12.5 |" in text and "| 40M | 16 | 1,234 |" in text
    assert "**Training step" in text and text.count("not measured") == 2  # training step and token agreement
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="no CUDA device here"):
            gpu_report.write_report(tmp_path, tmp_path / "BENCHMARKS.md", "x")
        assert not (tmp_path / "BENCHMARKS.md").exists() and (tmp_path / "gpu_check.json").is_file()
