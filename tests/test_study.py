"""The study end to end on smoke settings: the real 4 + 1 game structure with learning behaviour agents,
two sizes, fine-tuning from pretrained and from scratch, RESULTS.md and results.json read back against the
evaluation reports, a crash that loses only the stage in progress, and settings checks before any work."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from jowa.demo.report import clearly_higher
from jowa.study import stages

REPO = Path(__file__).resolve().parent.parent
GAMES = ["games=[Assault,SpaceInvaders,Seaquest,Pong]", "held_out=Breakout"]
SMOKE = [
    *GAMES,
    "behaviour.transitions=400", "behaviour.minutes=2", "behaviour.commit_seconds=0", "behaviour.device=cpu",
    "behaviour.settings={num_envs: 2, buffer_size: 400, learning_starts: 64, train_freq: 16, batch_size: 8}",
    "pretrain.overrides=[model.tokenizer.lpips_net=none,tokenizer.steps=3,tokenizer.batch_size=4,"
    "tokenizer.grid_every=3,world.steps=4,world.critic_start=2,world.batch_size=4,checkpoint.every=2,"
    "logging.every=1,logging.progress_bar=false,data.num_workers=0,data.shuffle_buffer=16]",
    "pretrain.sizes={tiny: [], small: [model.world_model.embed_dim=160]}", "pretrain.transitions_per_game=300",
    "finetune.transitions=100", "finetune.select=last-fraction=1.0",
    "finetune.overrides=[steps=2,batch_size=4,tokenizer.train=true,tokenizer.frames=4,checkpoint.every=2,"
    "logging.every=1,logging.progress_bar=false,evaluation.every=0,evaluation.final.episodes=0]",
    "evaluation.episodes=2", "evaluation.max_episode_steps=10", "evaluation.num_envs=4", "device=cpu",
]


def load_cli():
    spec = importlib.util.spec_from_file_location("study_cli", REPO / "study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_study_runs_every_stage_resumes_and_writes_results(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "study"
    cli = load_cli()

    def crash(*_args) -> dict:
        raise RuntimeError("simulated crash during the held-out evaluation")

    monkeypatch.setattr(stages, "heldout_stage", crash)
    assert cli.main(["--out", str(out), *SMOKE]) == 1
    assert "simulated crash" in capsys.readouterr().err
    record = json.loads((out / "study.json").read_text())
    assert list(record["stages"]) == ["behaviour", "tokenizer", "tokenize", "world:tiny", "world:small",
                                      "evaluate:tiny", "evaluate:small", "finetune:pretrained", "finetune:scratch"]
    world = (out / "models" / "small" / "final" / "world_model" / "model.safetensors").stat().st_mtime_ns

    monkeypatch.undo()
    assert cli.main(["--out", str(out), *SMOKE]) == 0
    printed = capsys.readouterr().out
    for stage in ("behaviour", "tokenizer", "world:small", "finetune:scratch"):
        assert f"{stage}: done in an earlier run" in printed, stage
    assert "evaluate:heldout: done in" in printed and f"results: {out / 'RESULTS.md'}" in printed
    assert (out / "models" / "small" / "final" / "world_model" / "model.safetensors").stat().st_mtime_ns == world

    # the behaviour data: learning agents, 4 + 1 games, their learning curves
    for game in ("Assault", "SpaceInvaders", "Seaquest", "Pong", "Breakout"):
        assert (out / "behaviour" / game / "1" / "learning_curve.json").is_file(), game
        assert (out / "figures" / f"learning_curve_{game}.png").stat().st_size > 0
    for name in ("learning_curves.png", "returns.png", "size_trend.png", "reconstructions.png"):
        assert (out / "figures" / name).stat().st_size > 0, name

    data = json.loads((out / "results.json").read_text())
    text = (out / "RESULTS.md").read_text()
    for heading in ("## Success criteria:", "## Stage wall times", "## Behaviour data", "## Model sizes",
                    "## Returns on the pretraining games", "## Fine-tuning on Breakout (held out)",
                    "## Tokenizer reconstructions", "## Diagnostics", "## Where everything is"):
        assert heading in text, heading
    assert "Machine: " in text and " cores " in text and "Wall time: " in text
    assert "planning K=2, H=1, λ-return score λ=0.5, context 1;" in text
    # every criterion computed and stated
    assert [c["id"] for c in data["criteria"]] == ["planning_beats_random", "planning_at_least_greedy",
                                                    "offline_reaches_data", "pretrained_beats_scratch",
                                                    "larger_lower_loss", "objects_kept"]
    for criterion in data["criteria"]:
        assert isinstance(criterion["passed"], bool), criterion
        verdict = "**met**" if criterion["passed"] else "**not met**"
        assert f"| {criterion['criterion']} | {verdict} | {criterion['detail']} |" in text
    sizes = data["sizes"]
    assert sizes["small"]["parameters"] > sizes["tiny"]["parameters"]
    assert data["criteria"][4]["passed"] == (sizes["small"]["final_token_loss"] < sizes["tiny"]["final_token_loss"])
    for size in ("tiny", "small"):  # judged on the trained models' cross-entropy on the diagnostics' episodes
        rows = data["diagnostics"]["world"][size]
        assert sizes[size]["final_token_loss"] == pytest.approx(np.mean([r["token_cross_entropy"] for r in rows]))
    counted = [r for r in data["diagnostics"]["tokenizer"] if r["tokenizer"] == "pretrained" and r["small_objects"]]
    assert counted and data["criteria"][5]["passed"] == all(r["small_objects_kept"] >= 0.5 for r in counted)
    held = data["heldout"]  # a higher mean inside the noise is not "beats"
    assert data["criteria"][3]["passed"] == clearly_higher(held["pretrained/plan"]["returns"],
                                                           held["scratch/plan"]["returns"])
    for size in ("tiny", "small"):  # the greedy agent under criterion 1's test, beside planning's
        greedy_wins = [g for g, row in data["games"].items()
                       if clearly_higher(row[f"{size}/greedy"]["returns"], row["random"]["returns"])]
        assert data["per_size"][size]["greedy_beats_random"] == greedy_wins
    assert "| planning beats random (> 2 SE) | planning ≥ greedy | greedy beats random (> 2 SE) |" in text
    # the numbers are those of the evaluation reports
    for size in ("tiny", "small"):
        for kind in ("plan", "greedy"):
            report = json.loads((out / "eval" / f"{size}_{kind}" / "report.json").read_text())
            assert report["settings"]["protocol"]["max_episode_steps"] == 10
            assert report["settings"]["protocol"]["sticky"] == 0.25
            if kind == "plan":  # the cpu budget's λ-return score reaches the planner
                assert report["settings"]["return_lambda"] == 0.5
            for game, row in data["games"].items():
                assert row[f"{size}/{kind}"]["mean"] == report["results"]["games"][game]["mean"]
    reference = json.loads((out / "eval" / "tiny_plan" / "report.json").read_text())
    section = reference["sections"]["Reference agents"]
    for game, row in data["games"].items():
        assert row["random"]["mean"] == reference["baseline"]["games"][game]["mean"]
        assert row["behaviour"]["returns"] == section["returns"]["behaviour agent"][game]
        for key in ("data_mean_return", "data_mean_return_capped"):
            assert row["behaviour_logged"][key] == section["behaviour_logs"][game][key]
        assert row["behaviour_logged"]["cap"] == 10  # the evaluation's cap: the data is held against it
        assert f"| {game} | {row['tiny/plan']['mean']:,.1f}" in text
    for start in ("pretrained", "scratch"):
        report = json.loads((out / "eval" / f"heldout_{start}_plan" / "report.json").read_text())
        assert data["heldout"][f"{start}/plan"]["mean"] == report["results"]["games"]["Breakout"]["mean"]
    assert data["finetune"]["pretrained"]["step"] == data["finetune"]["scratch"]["step"] == 2
    assert data["finetune"]["scratch"]["data"] == data["finetune"]["pretrained"]["data"]  # the same transitions
    # diagnostics: training-time diag/* series and the measures beside their baselines
    assert "| tokenizer | l1_foreground" in text and "| world (small) | token_accuracy" in text
    assert "copying the last frame" in text and "- **Breakout, fine-tuned (scratch) tokenizer**:" in text

    # other settings in the same directory are refused instead of mixing two studies
    assert cli.main(["--out", str(out), *SMOKE, "evaluation.episodes=3"]) == 2
    assert "holds a study with other settings (evaluation" in capsys.readouterr().err


def test_bad_settings_are_one_line_errors_before_any_work(tmp_path: Path, capsys) -> None:
    cli = load_cli()
    cases = [(["evaluation.episodez=3"], "unknown key 'episodez'"),
             (["held_out=Assault"], "also a pretraining game"),
             (["behaviour.parallel=0"], "behaviour.parallel must be at least 1"),
             (["pretrain.sizes={big: [model.tokenizer.ch=32]}"], "shares one tokenizer"),
             (["pretrain.sizes={big: [model.world_model.embed_dimm=32]}"], "embed_dimm"),
             (["--behaviour", str(tmp_path / "none")], "does not exist"),
             (["--budget", "laptop"], "not found")]
    for i, (argv, message) in enumerate(cases):
        out = tmp_path / f"out{i}"
        assert cli.main(["--out", str(out), *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, (argv, err)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("not a study")
    assert cli.main(["--out", str(tmp_path / "busy")]) == 2
    assert "not a study directory" in capsys.readouterr().err


def test_both_budgets_load_and_the_largest_size_is_last() -> None:
    from jowa.study.config import load_study

    cpu, gpu = load_study("cpu"), load_study("gpu")
    assert cpu.games == gpu.games and len(cpu.games) == 4 and cpu.held_out not in cpu.games
    assert cpu.finetune.transitions == 5000 and cpu.finetune.select == "last-fraction=0.2"
    assert cpu.evaluation.protocol == "standard" and len(cpu.pretrain.sizes) >= 2 and len(gpu.pretrain.sizes) == 3
    assert cpu.main_size == list(cpu.pretrain.sizes)[-1]
