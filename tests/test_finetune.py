"""finetune end to end on a small random 'pretrained' run and a synthetic replay of an unseen game:
training with imagination, periodic evaluation, the selected model reloaded, resume; freezing and
tokenizer fine-tuning; and the errors that must come before any work."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from jowa.config import TokenizerConfig, WorldModelConfig
from jowa.data.replay_layout import replay_log_dir
from jowa.data.replay_writer import ReplayWriter
from jowa.evaluation.runner import load_run
from jowa.finetuning.data import NotEnoughData
from jowa.finetuning.run import FinetuneOptions, finetune, prepare
from jowa.games import minimal_to_full
from jowa.model.world_model import WorldActionModel
from jowa.tokenizer import Tokenizer

REPO = Path(__file__).resolve().parent.parent
FAST = [
    "batch_size=4", "target_update_every=2", "checkpoint.every=2", "logging.every=1", "logging.progress_bar=false",
    "imagination.after=2", "evaluation.every=2", "evaluation.periodic.episodes=1", "evaluation.periodic.num_envs=1",
    "evaluation.periodic.max_episode_steps=6", "evaluation.final.episodes=1", "evaluation.final.max_episode_steps=6",
]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A run directory in pretrain.py's layout, pretrained (nominally) on Pong and Assault."""
    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("pretrained")
    Tokenizer(TokenizerConfig(vocab_size=32, embed_dim=16, z_channels=16, ch=8, num_res_blocks=1, lpips_net="none")
              ).save_pretrained(run / "final" / "tokenizer")
    WorldActionModel(WorldModelConfig(obs_vocab_size=32, num_layers=1, num_heads=2, embed_dim=32, q_mlp_dim=32, num_q=2)
                     ).save_pretrained(run / "final" / "world_model")
    (run / "tokens").mkdir()
    (run / "tokens" / "index.json").write_text(json.dumps({"games": {"Pong": {}, "Assault": {}}}))
    (run / "run.json").write_text(json.dumps({"size": "tiny", "model": {}, "stages": {
        "tokenize": {"status": "done", "tokens": str(run / "tokens")}, "world": {"status": "done"}}}))
    return run


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("replay")
    rng = np.random.default_rng(0)
    for game, lengths in (("Breakout", [40, 30, 50, 35]), ("Pong", [30, 30])):
        writer = ReplayWriter(replay_log_dir(root, game, "1"), capacity=256)
        for n in lengths:
            terminals = np.zeros(n, np.uint8)
            terminals[-1] = 1
            writer.add_rows((rng.integers(0, 4, (n, 84, 84)) * 60).astype(np.uint8),
                            rng.integers(0, len(minimal_to_full(game)), n),
                            rng.choice(np.array([-1, 0, 1], np.float32), n), terminals)
        writer.log_final()
    return root


def options(pretrained: Path, replay: Path, out: Path, **kwargs) -> FinetuneOptions:
    values = {"run": pretrained, "game": "Breakout", "out": out, "replay": replay, "transitions": 120,
              "steps": 4, "imagine": True, "overrides": FAST, "progress": False, **kwargs}
    return FinetuneOptions(**values)


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


def test_finetune_trains_with_imagination_evaluates_and_reloads(pretrained: Path, replay: Path, tmp_path: Path) -> None:
    out = tmp_path / "ft"
    summary = finetune(options(pretrained, replay, out))
    assert summary["status"] == "finished" and summary["step"] == 4
    assert summary["data"]["transitions"] == 120 and summary["data"]["segments"] == 120
    assert [p["steps"] for p in summary["data"]["pieces"]] == [40, 30, 50]  # --from first (tiny config)
    assert [r["step"] for r in summary["evaluations"]] == [2, 4]
    assert summary["final"]["selected"] == "best" and summary["final"]["step"] in (2, 4)
    losses = summary["losses"]["finetune"]
    assert "imagination_buffer" not in losses["first"]  # steps 1-2: real data only
    assert losses["last"]["imagination_buffer"] >= 4 and "loss_td_error" in losses["last"]
    assert len(summary["report_returns"]["agent"]["returns"]) == 1 and (out / "report" / "report.md").is_file()
    assert json.loads((out / "finetune.json").read_text())["status"] == "finished"

    model, tokenizer = load_run(out, torch.device("cpu"))  # what plan.py --run OUT loads: final/
    assert isinstance(model, WorldActionModel) and tokenizer.config.vocab_size == 32
    before, after = weights(pretrained / "final" / "world_model"), weights(out / "last" / "world_model")
    moved = ("head_q.head_module.params.0", "head_rewards.head_module.0.weight", "task_emb.embedding_tables.1.weight")
    for name in moved:
        assert not torch.equal(before[name], after[name]), name
    assert not torch.equal(before["transformer.blocks.0.mlp.0.weight"], after["transformer.blocks.0.mlp.0.weight"])
    assert all(torch.equal(v, weights(out / "last" / "tokenizer")[k])
               for k, v in weights(pretrained / "final" / "tokenizer").items())  # the tokenizer did not train

    with pytest.raises(ValueError, match="already holds a fine-tuning run"):
        prepare(options(pretrained, replay, out))
    longer = finetune(options(pretrained, replay, out, steps=6, resume=True))
    assert longer["step"] == 6 and [r["step"] for r in longer["evaluations"]] == [2, 4, 6]


def test_finetune_cli_trains_and_writes_the_final_model(pretrained: Path, replay: Path, tmp_path: Path, capsys) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("finetune_cli", REPO / "finetune.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    out = tmp_path / "cli"
    code = cli.main(["--run", str(pretrained), "--game", "Breakout", "--replay", str(replay), "--transitions", "120",
                     "--out", str(out), "--steps", "2", "--from", "last", *FAST, "logging.progress_bar=false"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "finetune: Breakout from" in printed and "120 transitions" in printed
    assert f"final model: {out / 'final'}" in printed and "report: " in printed
    assert (out / "final" / "world_model" / "model.safetensors").is_file()
    assert json.loads((out / "finetune.json").read_text())["config"]["data"]["select"] == "last"


def test_frozen_backbone_and_tokenizer_finetuning(pretrained: Path, replay: Path, tmp_path: Path) -> None:
    out = tmp_path / "heads"
    overrides = [*FAST, "train=heads_and_task", "tokenizer.train=true", "tokenizer.frames=4", "evaluation.every=0",
                 "evaluation.final.episodes=0"]
    summary = finetune(options(pretrained, replay, out, steps=2, imagine=False, overrides=overrides))
    assert summary["final"]["selected"] == "last" and "report" not in summary
    assert summary["parameters"]["frozen"] > 0 and summary["parameters"]["tokenizer"] > 0
    assert "tokenizer_reconstruction" in summary["losses"]["finetune"]["last"]
    before, after = weights(pretrained / "final" / "world_model"), weights(out / "final" / "world_model")
    for name, value in before.items():
        moved = not torch.equal(value, after[name])
        if name.startswith(("transformer.", "pos_emb.", "embedder.")):  # (the target head copies at step 2)
            assert not moved, name
    assert not torch.equal(before["head_rewards.head_module.0.weight"], after["head_rewards.head_module.0.weight"])
    tok_before, tok_after = weights(pretrained / "final" / "tokenizer"), weights(out / "final" / "tokenizer")
    assert any(not torch.equal(v, tok_after[k]) for k, v in tok_before.items())


def test_bad_inputs_fail_before_any_work(pretrained: Path, replay: Path, tmp_path: Path, caplog) -> None:
    with pytest.raises(ValueError, match="Pong is one of the games .* pretrained on .*--allow-pretrained-game"):
        prepare(options(pretrained, replay, tmp_path / "a", game="Pong", transitions=50))
    allowed = prepare(options(pretrained, replay, tmp_path / "a", game="Pong", transitions=50,
                              allow_pretrained_game=True))
    assert "not few-shot transfer" in allowed.warnings[0]
    with pytest.raises(NotEnoughData, match="holds 155 transitions in complete episodes; asked for 5000"):
        prepare(options(pretrained, replay, tmp_path / "a", transitions=5000))
    with pytest.raises(FileNotFoundError, match="No replay data for Seaquest"):
        prepare(options(pretrained, replay, tmp_path / "a", game="Seaquest"))
    no_tokenizer = tmp_path / "no_tokenizer"
    shutil.copytree(pretrained / "final" / "world_model", no_tokenizer / "final" / "world_model")
    with pytest.raises(FileNotFoundError, match="has no tokenizer"):
        prepare(options(no_tokenizer, replay, tmp_path / "a"))
    with pytest.raises(ValueError, match="unknown key"):
        prepare(options(pretrained, replay, tmp_path / "a", overrides=["imagination.horizn=2"]))
    with pytest.raises(ValueError, match="imagination.horizon must lie in"):
        prepare(options(pretrained, replay, tmp_path / "a", overrides=["imagination.horizon=7"]))
    assert not (tmp_path / "a").exists()

    done = subprocess.run([sys.executable, str(REPO / "finetune.py"), "--run", str(pretrained), "--game", "Pong",
                           "--replay", str(replay), "--out", str(tmp_path / "cli")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "error: Pong is one of the games" in done.stderr
