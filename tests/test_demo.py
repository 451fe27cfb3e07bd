"""The demo end to end on minutes-free settings: every stage on real ALE games, the report with all its
parts, a crash that loses only the stage in progress, and settings checks before any work."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from jowa.demo import pipeline
from jowa.demo.config import load_demo

REPO = Path(__file__).resolve().parent.parent
QUICK = [
    "held_out=Breakout", "games=[Pong,Assault]",
    "collect.transitions=160", "collect.held_out_transitions=120", "finetune.transitions=120",
    "pretrain.overrides=[model.tokenizer.lpips_net=none,tokenizer.steps=3,tokenizer.batch_size=4,"
    "tokenizer.grid_every=3,world.steps=4,world.critic_start=2,world.batch_size=4,checkpoint.every=2,"
    "logging.every=1,logging.progress_bar=false,data.num_workers=0,data.shuffle_buffer=16]",
    "finetune.overrides=[steps=2,batch_size=4,tokenizer.train=true,tokenizer.frames=4,checkpoint.every=2,logging.every=1,logging.progress_bar=false,"
    "evaluation.every=2,evaluation.periodic.episodes=1,evaluation.periodic.num_envs=1,"
    "evaluation.periodic.max_episode_steps=4,evaluation.final.episodes=0]",
    "evaluation.episodes=1", "evaluation.max_episode_steps=6", "evaluation.num_envs=2", "evaluation.video_frames=4",
]


def load_cli():
    spec = importlib.util.spec_from_file_location("demo_cli", REPO / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_runs_every_stage_resumes_and_writes_the_report(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "demo"
    cli = load_cli()

    def crash(*_args) -> dict:
        raise RuntimeError("simulated crash during fine-tuning")

    monkeypatch.setitem(pipeline.STAGE_FUNCTIONS, "finetune", crash)
    assert cli.main(["--out", str(out), *QUICK]) == 1
    assert "simulated crash" in capsys.readouterr().err
    record = json.loads((out / "demo.json").read_text())
    assert list(record["stages"]) == ["collect", "pretrain"]
    pretrained = (out / "pretrain" / "final" / "world_model" / "model.safetensors").stat().st_mtime_ns

    monkeypatch.undo()
    assert cli.main(["--out", str(out), *QUICK]) == 0
    printed = capsys.readouterr().out
    assert "collect: done in an earlier run" in printed and "pretrain: done in an earlier run" in printed
    assert f"report: {out / 'report' / 'report.md'}" in printed
    assert (out / "pretrain" / "final" / "world_model" / "model.safetensors").stat().st_mtime_ns == pretrained

    record = json.loads((out / "demo.json").read_text())
    assert list(record["stages"]) == list(pipeline.STAGES)
    collected = record["stages"]["collect"]["result"]
    assert {g: s["transitions"] for g, s in collected.items()} == {"Pong": 160, "Assault": 160, "Breakout": 120}
    report = out / "report"
    for name in ("curves_tokenizer.png", "curves_world.png", "curves_finetune.png", "reconstructions.png",
                 "returns.png", "video_Pong.gif", "video_Assault.gif", "video_Breakout.gif"):
        assert (report / name).stat().st_size > 0, name
    text = (report / "report.md").read_text()
    for heading in ("## Data", "## 1. Tokenizer", "## 2. World-action model", "## 3. Measures a black background",
                    "## 4. Fine-tuning on Breakout", "## 5. Returns", "## 6. Videos"):
        assert heading in text, heading
    assert "| Breakout | finetuned |" in text and "| Pong | pretrained |" in text
    assert "above the random policy's on" in text and "Next-token cross-entropy fell from" in text
    assert "| Breakout | pretrained |" in text and "| Breakout | fine-tuned |" in text  # reconstruction rows
    # the diagnostics section: every row beside its baseline, verdicts computed from the numbers
    assert "drawing the background (" in text and "copying the last frame" in text and "uniform return" in text
    assert "- **Breakout, fine-tuned tokenizer**:" in text and "- **Assault**:" in text
    assert "| tokenizer | l1_foreground" in text and "| world | token_accuracy" in text  # logged in training
    for name in ("pretrained_plan", "pretrained_greedy", "finetuned_plan", "finetuned_greedy"):
        evaluation = json.loads((out / "eval" / name / "report.json").read_text())
        assert evaluation["settings"]["protocol"]["max_episode_steps"] == 6
        assert (evaluation["baseline"] is not None) == name.endswith("plan")

    # other settings in the same directory are refused instead of mixing two demos
    assert cli.main(["--out", str(out), *QUICK, "evaluation.episodes=2"]) == 2
    assert "holds a demo run with other settings" in capsys.readouterr().err


def test_settings_are_checked_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="also a pretraining game"):
        load_demo(overrides=["held_out=Pong", "games=[Pong,Breakout]"])
    with pytest.raises(ValueError, match="needs at least that many collected"):
        load_demo(overrides=["finetune.transitions=6000"])
    with pytest.raises(ValueError, match="unknown key"):
        load_demo(overrides=["evaluation.episodez=3"])
    with pytest.raises(ValueError, match="Unknown game|unknown game"):
        load_demo(overrides=["held_out=Pacman"])
    config = load_demo()
    assert config.held_out not in config.games and config.finetune.transitions == 5000
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("not a demo")
    with pytest.raises(FileExistsError, match="not a demo run directory"):
        pipeline.run_demo(tmp_path / "busy", config)


def test_a_win_over_random_needs_more_than_noise() -> None:
    from jowa.demo.report import clearly_higher

    assert clearly_higher([3, 3, 3], [1, 1, 1])  # identical episodes: any margin counts
    assert not clearly_higher([3, 0, 6], [1, 2, 0])  # higher mean, within two standard errors
    assert not clearly_higher([1, 1], [1, 1]) and not clearly_higher([0], [2])
