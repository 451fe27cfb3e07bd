"""Kill -9 and resume: 2N steps straight equal N steps, SIGKILL, --resume, N more — bit for bit (CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "tests" / "scripts" / "train_synthetic.py"


def run(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def weights(out: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(str(out / "checkpoints" / f"step_{step:08d}" / "world_model" / "model.safetensors"))


def test_sigkill_then_resume_is_bit_identical(tmp_path: Path) -> None:
    # 12 steps: world-model phase to 4, critic phase after (fresh AdamW, cosine schedule with warmup,
    # dropout on); checkpoint every 6 (a multiple of the target period 3, so the official target copy
    # after loading is a no-op); killed right after step 8, two steps past the checkpoint.
    common = ("--steps", "12", "--critic-start", "4", "--every", "6", "--schedule", "cosine")
    straight = run(tmp_path / "straight", *common)
    assert straight.returncode == 0, straight.stderr

    killed = run(tmp_path / "resumed", *common, "--kill-at", "8")
    assert killed.returncode == -signal.SIGKILL
    assert sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()) == ["step_00000006"]

    resumed = run(tmp_path / "resumed", *common, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr and "step_00000006 at step 6" in resumed.stderr
    result = json.loads((tmp_path / "resumed" / "result.json").read_text())
    assert result["step"] == 12 and result["status"] == "finished"

    a, b = weights(tmp_path / "straight", 12), weights(tmp_path / "resumed", 12)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name  # bit-equal, not merely close
    # and training did move the weights
    assert not torch.equal(a["head_q.head_module.params.0"], weights(tmp_path / "straight", 6)["head_q.head_module.params.0"])
