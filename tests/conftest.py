"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """`../shared/reference` beside the repository (numerical fixtures from the official code)."""
    if not (REFERENCE / "jowa" / "description.json").is_file():
        pytest.skip(f"reference fixtures not found at {REFERENCE}")
    return REFERENCE
