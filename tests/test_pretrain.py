"""pretrain end to end on a tiny synthetic replay (every stage, re-run skipping), and the input checks
that must fail before any training starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import cpu_ranks_env

from jowa.data.replay_layout import replay_log_dir
from jowa.data.replay_writer import ReplayWriter
from jowa.data.tokenize_replay import tokenize_replay
from jowa.games import minimal_to_full
from jowa.model.world_model import WorldActionModel
from jowa.tokenizer import Tokenizer
from jowa.training.distributed import init_distributed
from jowa.training.pretrain import PretrainOptions, pretrain, tokenizer_identity

REPO = Path(__file__).resolve().parent.parent
CTX = init_distributed("cpu", argv=[])
FAST = [
    "model.tokenizer.lpips_net=none", "tokenizer.steps=3", "tokenizer.batch_size=4", "tokenizer.grid_every=2",
    "tokenizer.pool_frames=300", "tokenizer.scan_frames=1000", "world.steps=4", "world.critic_start=2",
    "world.batch_size=4", "world.target_update_every=2", "checkpoint.every=2", "logging.every=1",
    "logging.progress_bar=false", "data.num_workers=0", "data.shuffle_buffer=16",
]


def write_replay(root: Path, game: str, lengths: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    writer = ReplayWriter(replay_log_dir(root, game, "1"), capacity=256)
    for length in lengths:
        frames = (rng.integers(0, 4, (length, 84, 84)) * 60 + 10).astype(np.uint8)
        terminals = np.zeros(length, np.uint8)
        terminals[-1] = 1
        writer.add_rows(frames, rng.integers(0, len(minimal_to_full(game)), length),
                        rng.choice(np.array([-1, 0, 1], np.float32), length), terminals)
    writer.log_final()


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("replay")
    write_replay(root, "Pong", [30, 45, 20], seed=1)
    write_replay(root, "Breakout", [25, 40], seed=2)
    return root


def test_every_stage_runs_and_a_rerun_continues_past_them(replay: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    summary = pretrain(PretrainOptions(size="tiny", out=out, replay=replay, overrides=FAST), CTX)
    assert list(summary["stages"]) == ["tokenizer", "tokenize", "world"]
    record = json.loads((out / "run.json").read_text())
    assert {k: v["status"] for k, v in record["stages"].items()} == dict.fromkeys(["tokenizer", "tokenize", "world"], "done")

    tokenizer = Tokenizer.from_pretrained(out / "final" / "tokenizer")
    model = WorldActionModel.from_pretrained(out / "final" / "world_model")
    assert tokenizer.config.vocab_size == model.config.obs_vocab_size == 512
    identity = tokenizer_identity(out / "final" / "tokenizer")
    assert json.loads((out / "tokens" / "index.json").read_text())["tokenizer"] == identity
    assert record["stages"]["world"]["tokenizer"] == identity
    assert sorted(p.name for p in (out / "tokenizer" / "grids").iterdir()) == ["step_00000002.png", "step_00000003.png"]
    assert any((out / "tokenizer" / "tb").glob("events.out.tfevents.*"))
    assert any((out / "world" / "tb").glob("events.out.tfevents.*"))
    last = out / "world" / "checkpoints" / "step_00000004"
    assert (last / "world_model" / "model.safetensors").is_file() and (last / "tokenizer" / "model.safetensors").is_file()
    world = summary["stages"]["world"]["losses"]
    assert set(world) == {"world_model", "critic"} and "loss_td_error" in world["critic"]["last"]

    capsys.readouterr()
    again = pretrain(PretrainOptions(size="tiny", out=out, replay=replay, overrides=FAST), CTX)
    assert again["stages"] == {} and "already done" in capsys.readouterr().out
    # the world stage alone, longer: refuses to overwrite, then continues from its checkpoint
    longer = [*FAST, "world.steps=6"]
    with pytest.raises(Exception, match="already holds checkpoints"):
        pretrain(PretrainOptions(size="tiny", out=out, stage="world", overrides=longer), CTX)
    resumed = pretrain(PretrainOptions(size="tiny", out=out, stage="world", resume=True, overrides=longer), CTX)
    assert resumed["stages"]["world"]["step"] == 6


def test_bad_inputs_fail_before_training(replay: Path, tmp_path: Path) -> None:
    def attempt(**kwargs) -> None:
        pretrain(PretrainOptions(**{"size": "tiny", "out": tmp_path / "bad", "overrides": FAST, **kwargs}), CTX)

    with pytest.raises(ValueError, match="Unknown size 'huge'"):
        attempt(size="huge", replay=replay)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no game directories"):
        attempt(replay=tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        attempt(replay=tmp_path / "missing")
    with pytest.raises(ValueError, match="No replay data for \\['Seaquest'\\]"):
        attempt(replay=replay, games=["Seaquest"])
    with pytest.raises(ValueError, match="unknown key"):
        attempt(replay=replay, overrides=[*FAST, "world.stepz=3"])
    with pytest.raises(ValueError, match="does not split into grad_accum 3"):
        attempt(replay=replay, overrides=[*FAST, "world.grad_accum=3"])
    with pytest.raises(FileNotFoundError, match="No trained tokenizer"):
        attempt(stage="world", tokens=tmp_path)

    # shards made by another tokenizer
    tokenizer_dir = tmp_path / "tok"
    Tokenizer(Tokenizer.config_class(vocab_size=512, embed_dim=64, z_channels=64, ch=16, num_res_blocks=1,
                                     lpips_net="none")).save_pretrained(tokenizer_dir)
    tokenize_replay(replay, "patch-quantizer", tmp_path / "shards", progress=False)
    with pytest.raises(ValueError, match="made by tokenizer patch-quantizer, not by"):
        attempt(stage="world", tokens=tmp_path / "shards", tokenizer=tokenizer_dir)
    assert not (tmp_path / "bad" / "world").exists() and not (tmp_path / "bad" / "tokenizer").exists()


def test_cli_reports_errors_without_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "pretrain.py"), "--size", "7B", "--replay", str(tmp_path),
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "error: Unknown size '7B'" in done.stderr and "Traceback" not in done.stderr
    no_gpu = subprocess.run([sys.executable, str(REPO / "pretrain.py"), "--size", "tiny", "--replay", str(tmp_path),
                             "--out", str(tmp_path / "run"), "--device", "cuda"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert no_gpu.returncode == 2, no_gpu.stderr  # asked for CUDA, got none: an error, not a CPU run
    assert "sees no CUDA device" in no_gpu.stderr and no_gpu.stderr.count("\n") == 1


@pytest.fixture(scope="module")
def first_stages(replay: Path, tmp_path_factory) -> Path:
    """A run with the tokenizer trained and the replay tokenized, for launches of the world stage alone."""
    out = tmp_path_factory.mktemp("first_stages")
    for stage in ("tokenizer", "tokenize"):
        pretrain(PretrainOptions(size="tiny", out=out, replay=replay, stage=stage, overrides=FAST), CTX)
    return out


@pytest.mark.parametrize("launcher", ["deepspeed", "torchrun"])
def test_pretrain_script_under_a_multi_rank_launcher(launcher: str, replay: Path, first_stages: Path,
                                                     tmp_path: Path) -> None:
    """The README's multi-GPU commands on 2 CPU ranks: DeepSpeed (ZeRO-2) runs every stage from the replay;
    torchrun (DDP) runs the world stage from existing shards and tokenizer."""
    import shutil
    import socket

    if shutil.which(launcher) is None:
        pytest.skip(f"the {launcher} launcher is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    out = tmp_path / "run"
    if launcher == "deepspeed":
        command = ["deepspeed", "--num_gpus", "2", "--master_port", port, "pretrain.py", "--size", "tiny",
                   "--replay", str(replay), "--out", str(out), *FAST,
                   "engine.deepspeed_config=configs/deepspeed/zero2.json"]
    else:
        command = ["torchrun", "--nproc_per_node", "2", "--master_port", port, "pretrain.py", "--size", "tiny",
                   "--tokens", str(first_stages / "tokens"), "--tokenizer", str(first_stages / "final" / "tokenizer"),
                   "--out", str(out), *FAST]
    done = subprocess.run(command, cwd=REPO, env=cpu_ranks_env(), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads((out / "run.json").read_text())
    stages = ["tokenizer", "tokenize", "world"] if launcher == "deepspeed" else ["world"]
    assert [s for s in stages if record["stages"].get(s, {}).get("status") == "done"] == stages
    assert f"{launcher} launch, rank 0/2" in done.stdout
    model = WorldActionModel.from_pretrained(out / "final" / "world_model")
    assert model.config.obs_vocab_size == 512
