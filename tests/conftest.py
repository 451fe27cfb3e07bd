"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"  # numerical fixtures from the official code (tests/fixtures/README.md)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """`tests/fixtures`: `jowa/` (official-code fixtures) and `lpips/` (reference images)."""
    if not (FIXTURES / "jowa" / "description.json").is_file():
        raise FileNotFoundError(f"{FIXTURES}/jowa/description.json is missing: the checkout is incomplete")
    return FIXTURES


def cpu_ranks_env() -> dict[str, str]:
    """Environment for multi-process CPU runs: the CPU accelerator and no visible GPU, so the suite runs
    the same on a machine that has one; one intra-op thread per rank on the 2 cores."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu", "CUDA_VISIBLE_DEVICES": ""}
