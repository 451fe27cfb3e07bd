"""Open-loop imagination: the model continues alone under real actions; per-horizon measures; the report's section."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from jowa.config import TokenizerConfig, WorldModelConfig
from jowa.diagnostics.open_loop import OpenLoop, horizon_measures, imagine_open_loop
from jowa.evaluation.open_loop_report import grid_image, open_loop_section, real_segments
from jowa.evaluation.runner import evaluate_run, resolve_settings
from jowa.games import task_id
from jowa.model.world_model import WorldActionModel
from jowa.objective import interleave
from jowa.tokenizer import Tokenizer

TOKENIZER = TokenizerConfig(vocab_size=32, embed_dim=16, z_channels=16, ch=8, num_res_blocks=1, lpips_net="none")
MODEL = WorldModelConfig(obs_vocab_size=32, num_layers=1, num_heads=2, embed_dim=32, q_mlp_dim=32, num_q=2)


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return WorldActionModel(MODEL).eval(), Tokenizer(TOKENIZER).eval()


def test_imagined_frames_are_what_the_model_predicts_from_its_own_frames(nets) -> None:
    """Each imagined frame is the argmax continuation of a full (uncached) pass over context + earlier imagined frames."""
    model, _ = nets
    g = torch.Generator().manual_seed(1)
    tokens, actions = torch.randint(0, 32, (2, 5, 36), generator=g), torch.randint(0, 4, (2, 5), generator=g)
    tasks = torch.full((2,), task_id("Breakout"))
    loop = imagine_open_loop(model, tokens, actions, torch.zeros(2, 5), tasks, context=2)
    assert loop.model_tokens.shape == (2, 3, 36) and loop.reward_signs.shape == (2, 3)
    assert ((loop.end_probs >= 0) & (loop.end_probs <= 1)).all()
    fed = torch.cat([tokens[:, :2], loop.model_tokens], dim=1)  # real context, then the model's own frames
    with torch.no_grad():
        out = model(interleave(fed, actions), tasks, with_target=False)
    logits = out.logits_observations.unflatten(1, (5, 36))  # flat logit j predicts flat observation token j + 1
    for h in range(3):
        t = 2 + h
        first = logits[:, t - 1, -1].argmax(-1)  # token 0 of frame t: from the last logit of frame t − 1
        rest = logits[:, t, :-1].argmax(-1)
        assert torch.equal(torch.cat([first[:, None], rest], 1), loop.model_tokens[:, h])
        assert torch.equal(out.logits_rewards[:, t - 1].argmax(-1) - 1, loop.reward_signs[:, h])


def test_horizon_measures_count_changed_tokens_and_reward_signs() -> None:
    truth = torch.zeros(1, 4, 36, dtype=torch.long)
    truth[0, 2, :4] = 1  # frame 2 changes 4 tokens; frame 3 changes 2 more
    truth[0, 3, :6] = 1
    imagined = truth[:, 2:].clone()
    imagined[0, 0, :2] = 0  # horizon 1: 2 of the 4 changed tokens right
    loop = OpenLoop(2, truth, imagined, torch.tensor([[0.0, 1.0, -1.0, 0.0]]), torch.tensor([[1, 1]]), torch.zeros(1, 2))
    h1, h2 = horizon_measures(loop)
    assert h1["changed_token_accuracy"] == 0.5 and h1["token_accuracy"] == 34 / 36
    assert h1["context_copy_changed_accuracy"] == 0.0
    assert h2["changed_token_accuracy"] == 1.0 and h2["changed_token_fraction"] == 2 / 36
    assert h2["context_copy_changed_accuracy"] == 0.0  # frame 1 (the last context frame) has zeros there
    assert h1["reward_accuracy"] == 1.0 and h2["reward_accuracy"] == 0.0 and h2["rewarded_accuracy"] == 0.0


def test_real_segments_stay_inside_episodes_and_do_not_overlap() -> None:
    frames, actions, rewards = real_segments("Breakout", 3, 6, sticky=0.0, seed=0)
    assert frames.shape == (3, 6, 84, 84) and frames.dtype == np.uint8
    assert actions.shape == rewards.shape == (3, 6)
    assert set(np.unique(actions)) <= {0, 1, 3, 4}  # Breakout's valid full-set actions
    assert all((np.abs(np.diff(f.astype(int), axis=0)).sum() > 0) for f in frames)  # the chosen ones move


def test_section_image_has_truth_model_error_rows(nets, tmp_path) -> None:
    model, tokenizer = nets
    section = open_loop_section(model, tokenizer, ["Breakout"], sticky=0.0, segments=2, context=3, horizon=4)
    result = section.games[0]
    grid = grid_image(result)
    assert grid.shape == (2 * 3 * 84 + 4, 7 * 84 + 2)
    error = np.abs(result.frames[0, 0].astype(int) - result.model_frames[0, 0].astype(int))
    assert np.array_equal(grid[2 * 84:3 * 84, :84], error)  # third row: |truth − model|
    assert [m["horizon"] for m in section.data()["Breakout"]] == [1, 2, 3, 4]
    (path,) = section.write_images(tmp_path)
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_evaluation_report_carries_the_open_loop_section(nets, tmp_path) -> None:
    model, tokenizer = nets
    run = tmp_path / "run"
    tokenizer.save_pretrained(run / "tokenizer")
    model.save_pretrained(run / "world_model")
    settings = resolve_settings(["Breakout"], 1, "jowa", 2, 1, 2, 1, max_episode_steps=4)
    out = evaluate_run(run, settings, tmp_path / "report", progress=False, open_loop_segments=2)
    report = json.loads((out / "report.json").read_text())
    rows = report["sections"]["Open-loop imagination"]["Breakout"]
    assert [r["horizon"] for r in rows] == [1, 2, 3, 4, 5]
    assert "![open-loop Breakout](open_loop_Breakout.png)" in (out / "report.md").read_text()
    assert (out / "open_loop_Breakout.png").stat().st_size > 10_000


def test_the_demo_report_copies_each_evaluations_open_loop_figure(tmp_path) -> None:
    from jowa.evaluation.open_loop_report import copy_open_loop_figures

    plan = tmp_path / "eval" / "pretrained_plan"
    plan.mkdir(parents=True)
    (plan / "open_loop_Breakout.png").write_bytes(b"\x89PNG fake")
    target = tmp_path / "report"
    target.mkdir()
    lines = copy_open_loop_figures([("pretrained model", plan), ("fine-tuned model", tmp_path / "eval" / "none")], target)
    assert (target / "pretrained_plan_open_loop_Breakout.png").read_bytes() == b"\x89PNG fake"
    assert "![pretrained model open-loop](pretrained_plan_open_loop_Breakout.png)" in lines
    assert sum(line.startswith("**") for line in lines) == 1  # the missing report adds nothing
