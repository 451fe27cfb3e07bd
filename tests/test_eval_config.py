"""One evaluation config (jowa.evaluation.config.EvalConfig): plan.py, fine-tuning, the demo and the study all
set it, the strict loader reads it, and `resolve` turns it into the runner's per-game settings."""

from __future__ import annotations

import pytest

from jowa.config import apply_overrides
from jowa.demo.config import load_demo
from jowa.evaluation.config import EvalConfig, resolve
from jowa.evaluation.paper_scores import PAPER_PLANNING_SETTINGS
from jowa.finetuning.config import load_finetune
from jowa.study.config import load_study


def test_a_named_table_sets_the_papers_per_game_context_and_beam_width() -> None:
    settings = resolve(EvalConfig(episodes=2, horizon=1, settings="jowa_150M", num_envs=2),
                       ["Assault", "Berzerk", "Pong"])
    paper = PAPER_PLANNING_SETTINGS["JOWA_150M"]
    assert settings.horizon == 2  # the table's H
    for game in ("Assault", "Berzerk"):
        assert (settings.per_game[game].context, settings.per_game[game].beam_width) == (
            paper[game].context, paper[game].beam_width)
    assert (settings.per_game["Pong"].context, settings.per_game["Pong"].beam_width) == (6, 2)  # not in the table
    greedy = resolve(EvalConfig(horizon=0, settings="jowa_150M"), ["Assault"])
    assert greedy.horizon == 0 and greedy.per_game["Assault"].beam_width == 1  # H = 0 is greedy, whatever the table
    capped = resolve(EvalConfig(max_episode_steps=50, protocol="standard"), ["Pong"])
    assert capped.protocol.max_episode_steps == 50 and "capped at 50" in capped.protocol.name
    with pytest.raises(FileNotFoundError, match="settings file not found"):
        resolve(EvalConfig(settings="no_such_table"), ["Pong"])
    with pytest.raises(ValueError, match="context 8 \\+ horizon 2"):
        resolve(EvalConfig(context=8), ["Pong"])


def test_every_user_holds_the_same_config_read_strictly() -> None:
    finetune = load_finetune("tiny")
    assert isinstance(finetune.evaluation.periodic, EvalConfig) and isinstance(finetune.evaluation.final, EvalConfig)
    assert (finetune.evaluation.periodic.max_episode_steps, finetune.evaluation.final.episodes) == (200, 4)
    assert apply_overrides(finetune, ["evaluation.final.episodes=0"]).evaluation.final.episodes == 0
    with pytest.raises(KeyError, match="final_episodes"):  # the old final_* twins are gone
        apply_overrides(finetune, ["evaluation.final_episodes=0"])
    demo = load_demo(overrides=["evaluation.num_envs=2"])
    assert isinstance(demo.evaluation, EvalConfig) and demo.evaluation.num_envs == 2
    study = load_study("cpu", ["evaluation.max_episode_steps=10"])
    assert isinstance(study.evaluation, EvalConfig) and study.evaluation.max_episode_steps == 10


def test_return_lambda_reaches_the_beam_search_and_only_it() -> None:
    from jowa.evaluation.runner import agent_actor_factory

    mixed = resolve(EvalConfig(horizon=1, return_lambda=0.5), ["Pong"])
    assert mixed.return_lambda == 0.5 and mixed.label() == "beam search H=1 λ=0.5"
    assert mixed.to_json()["return_lambda"] == 0.5
    official = resolve(EvalConfig(horizon=1), ["Pong"])
    assert "return_lambda" not in official.to_json() and official.label() == "beam search H=1"
    greedy = resolve(EvalConfig(horizon=0, return_lambda=0.5), ["Pong"])
    assert greedy.planner == "greedy" and greedy.return_lambda == 1.0  # no look-ahead, no score to mix
    with pytest.raises(ValueError, match="return lambda"):
        resolve(EvalConfig(return_lambda=1.5), ["Pong"])
    with pytest.raises(ValueError, match="mcts planner has none"):
        resolve(EvalConfig(planner="mcts", return_lambda=0.5), ["Pong"])
    from jowa.config import load_size
    from jowa.model.world_model import WorldActionModel

    model = WorldActionModel(load_size("tiny").world_model)
    actor = agent_actor_factory(model, None, mixed)(["Pong"])
    assert actor.agent.planner.return_lambda == 0.5
