"""Shared test fixtures."""

from __future__ import annotations

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
