"""Models save through huggingface_hub's ModelHubMixin in our layout (config.json with the weights' sha256,
model.safetensors, a model card), load from local directories, and carry evaluation results as a
JAT-style model-index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard, ModelHubMixin

from jowa.config import TokenizerConfig, WorldModelConfig
from jowa.evaluation.report import EvaluationResults, write_report
from jowa.model.world_model import WorldActionModel
from jowa.model_card import CARD_NAME, attach_report, dataset_type, main
from jowa.model_files import CONFIG_NAME, WEIGHTS_NAME, CheckpointError, file_sha256
from jowa.tokenizer import Tokenizer

SMALL = WorldModelConfig(obs_vocab_size=32, num_layers=1, num_heads=2, embed_dim=32, q_mlp_dim=32, num_q=2)


def metrics(card: ModelCard) -> dict[tuple[str, str], object]:
    return {(r.dataset_type, r.metric_type): r.metric_value for r in card.data.eval_results or []}


def test_save_goes_through_the_hub_mixin_and_keeps_our_layout(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = WorldActionModel(SMALL)
    assert isinstance(model, ModelHubMixin) and callable(model.push_to_hub)
    directory = model.save_pretrained(tmp_path / "wm", extra={"imported_from": "x.pt"})
    assert sorted(p.name for p in directory.iterdir()) == [CARD_NAME, CONFIG_NAME, WEIGHTS_NAME]
    meta = json.loads((directory / CONFIG_NAME).read_text())
    assert list(meta) == ["kind", "config", "imported_from", "weights"] and meta["kind"] == "world_model"
    assert meta["weights"] == {"bytes": (directory / WEIGHTS_NAME).stat().st_size,
                               "sha256": file_sha256(directory / WEIGHTS_NAME)}
    loaded = WorldActionModel.from_pretrained(directory)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    card = ModelCard.load(directory / CARD_NAME)
    assert card.data.library_name == "jowa" and "reinforcement-learning" in card.data.tags
    assert card.data.eval_results is None and "No evaluation results" in card.text
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # written through a temporary directory

    tokenizer = Tokenizer(TokenizerConfig(vocab_size=32, embed_dim=16, z_channels=16, ch=8, num_res_blocks=1,
                                          lpips_net="none"))
    saved = tokenizer.save_pretrained(tmp_path / "tok")
    assert "jowa.tokenizer.Tokenizer.from_pretrained" in (saved / CARD_NAME).read_text()
    with pytest.raises(CheckpointError, match="holds a 'tokenizer' checkpoint, expected 'world_model'"):
        WorldActionModel.from_pretrained(saved)


def test_results_become_a_jat_style_model_index(tmp_path: Path) -> None:
    results = {"Pong": {"mean": 3.0, "std": 1.5, "num_episodes": 4, "hns": 0.25},
               "SpaceInvaders": {"mean": 100.0, "std": 0.0, "num_episodes": 4, "hns": None}}
    directory = WorldActionModel(SMALL).save_pretrained(tmp_path / "wm", results=results)
    card = ModelCard.load(directory / CARD_NAME)
    assert metrics(card) == {("atari-pong", "total_reward"): "3.00 +/- 1.50",
                             ("atari-pong", "human_normalized_score"): 0.25,
                             ("atari-spaceinvaders", "total_reward"): "100.00 +/- 0.00"}
    assert {r.task_type for r in card.data.eval_results} == {"reinforcement-learning"}
    assert "| Pong | 4 | 3.00 ± 1.50 | 0.250 |" in card.text and "| SpaceInvaders | 4 | 100.00 ± 0.00 | n/a |" in card.text
    assert dataset_type("MsPacman") == "atari-mspacman"


def test_a_report_attaches_to_a_saved_model(tmp_path: Path, capsys) -> None:
    directory = WorldActionModel(SMALL).save_pretrained(tmp_path / "wm")
    weights = (directory / WEIGHTS_NAME).read_bytes()
    report = write_report(tmp_path / "report", EvaluationResults({"Breakout": [2.0, 4.0], "Pong": [-21.0, -19.0]}),
                          {"planner": "greedy"}, bootstrap_reps=50)
    assert main([str(directory), str(report)]) == 0 and capsys.readouterr().out.strip() == str(directory / CARD_NAME)
    found = metrics(ModelCard.load(directory / CARD_NAME))
    games = json.loads((report / "report.json").read_text())["results"]["games"]
    assert found[("atari-breakout", "total_reward")] == "3.00 +/- 1.00"
    assert found[("atari-pong", "human_normalized_score")] == round(games["Pong"]["hns"], 4)
    assert (directory / WEIGHTS_NAME).read_bytes() == weights  # the card only; the model still loads
    WorldActionModel.from_pretrained(directory)
    assert main([str(directory), str(tmp_path / "missing")]) == 2 and "does not exist" in capsys.readouterr().err
    assert attach_report(directory, report) == directory / CARD_NAME
