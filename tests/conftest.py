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


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """A randomly initialised small run directory (tokenizer + world model): evaluation paths do not depend
    on training."""
    import torch

    from jowa.config import TokenizerConfig, WorldModelConfig
    from jowa.model.world_model import WorldActionModel
    from jowa.tokenizer import Tokenizer

    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("run")
    tokenizer = TokenizerConfig(vocab_size=32, embed_dim=16, z_channels=16, ch=8, num_res_blocks=1, lpips_net="none")
    Tokenizer(tokenizer).save_pretrained(run / "tokenizer")
    model = WorldModelConfig(obs_vocab_size=32, num_layers=1, num_heads=2, embed_dim=32, q_mlp_dim=32, num_q=2)
    WorldActionModel(model).save_pretrained(run / "world_model")
    return run
