"""Model directories record the size and sha256 of their weights; loading checks them and refuses
non-finite weights; plan.py turns a damaged checkpoint into one error line and exit 2."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from jowa.config import WorldModelConfig
from jowa.model.world_model import WorldActionModel
from jowa.model_files import CONFIG_NAME, WEIGHTS_NAME, CheckpointError, file_sha256

REPO = Path(__file__).resolve().parent.parent
SMALL = WorldModelConfig(obs_vocab_size=32, num_layers=1, num_heads=2, embed_dim=32, q_mlp_dim=32, num_q=2)


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return WorldActionModel(SMALL).save_pretrained(tmp_path / "world_model")


def test_saving_records_the_weights_checksum_and_loading_round_trips(saved: Path) -> None:
    meta = json.loads((saved / CONFIG_NAME).read_text())
    weights = saved / WEIGHTS_NAME
    assert meta["weights"] == {"bytes": weights.stat().st_size, "sha256": file_sha256(weights)}
    stored, loaded = load_file(str(weights)), WorldActionModel.from_pretrained(saved).state_dict()
    assert stored and all(torch.equal(value, loaded[name]) for name, value in stored.items())


def test_random_bytes_inside_the_weights_are_refused(saved: Path) -> None:
    weights = saved / WEIGHTS_NAME
    data = bytearray(weights.read_bytes())
    data[len(data) // 2:len(data) // 2 + 4096] = np.random.default_rng(0).bytes(4096)
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: content does not match the sha256"):
        WorldActionModel.from_pretrained(saved)
    weights.write_bytes(bytes(data[:-10]))
    with pytest.raises(CheckpointError, match="truncated or replaced"):
        WorldActionModel.from_pretrained(saved)


def test_non_finite_weights_are_refused_even_with_a_matching_checksum(saved: Path) -> None:
    weights = saved / WEIGHTS_NAME
    state = load_file(str(weights))
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name][0] = float("nan")
    save_file(state, str(weights))
    meta = json.loads((saved / CONFIG_NAME).read_text())
    meta["weights"] = {"bytes": weights.stat().st_size, "sha256": file_sha256(weights)}
    (saved / CONFIG_NAME).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=rf"non-finite values in 1 weight tensors \({name}\)"):
        WorldActionModel.from_pretrained(saved)


def test_plan_cli_refuses_a_damaged_checkpoint_in_one_line(saved: Path, capsys) -> None:
    from jowa.config import TokenizerConfig
    from jowa.tokenizer import Tokenizer

    Tokenizer(TokenizerConfig(vocab_size=32, embed_dim=16, z_channels=16, ch=8, num_res_blocks=1,
                              lpips_net="none")).save_pretrained(saved.parent / "tokenizer")
    weights = saved / WEIGHTS_NAME
    data = bytearray(weights.read_bytes())
    data[-5000:-904] = bytes(4096)
    weights.write_bytes(bytes(data))
    spec = importlib.util.spec_from_file_location("plan_checkpoint_cli", REPO / "plan.py")
    plan_cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plan_cli)
    code = plan_cli.main(["--run", str(saved.parent), "--games", "Pong", "--episodes", "1", "--greedy",
                          "--device", "cpu", "--out", str(saved.parent / "eval")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(weights) in err and "sha256" in err
    assert not (saved.parent / "eval").exists()


def test_engine_files_are_checked_against_the_manifest_before_a_loader_unpickles_them(tmp_path: Path) -> None:
    from jowa.training.step_checkpoints import CorruptCheckpoint, validate, write_manifest

    step = tmp_path / "step_00000006"
    (step / "engine").mkdir(parents=True)
    (step / "engine" / "mp_rank_00_model_states.pt").write_bytes(b"states")
    (step / "training_state.pt").write_bytes(b"state")
    write_manifest(step, 6)
    assert validate(step, under="engine") == 6
    (step / "training_state.pt").write_bytes(b"other")  # outside `under`: not this check's business
    assert validate(step, under="engine") == 6
    planted = step / "engine" / "zero_pp_rank_0_mp_rank_00_optim_states.pt"
    planted.write_bytes(b"pickle")
    with pytest.raises(CorruptCheckpoint, match="zero_pp_rank_0_mp_rank_00_optim_states.pt: not in the manifest"):
        validate(step, under="engine")
    planted.unlink()
    (step / "engine" / "mp_rank_00_model_states.pt").write_bytes(b"STATES")
    with pytest.raises(CorruptCheckpoint, match="does not match its sha256"):
        validate(step, under="engine")
