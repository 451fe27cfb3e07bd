"""A finished study's models played again under changed evaluation settings: the helpers the learning
experiments on a study (return_lambda.py, critic_context.py) share."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from jowa.evaluation.config import EvalConfig, resolve


def study_record(study: Path) -> dict[str, Any]:
    """The study's own config as it recorded it (STUDY/study.json)."""
    return json.loads((study / "study.json").read_text())["config"]


def study_settings(record: dict[str, Any], episodes: int | None = None) -> EvalConfig:
    """The study's evaluation settings and seed (`episodes` per game instead of the study's, if given)."""
    settings = replace(EvalConfig(**record["evaluation"]), seed=record["seed"])
    return replace(settings, episodes=episodes) if episodes else settings


def played(model_run: Path, games: list[str], settings: EvalConfig, out: Path) -> dict[str, dict[str, Any]]:
    """The study's evaluation of `model_run` under `settings` (as jowa/study/stages._evaluate plays it: at most
    episodes × games environments) → game → {"mean", "top_action", "top_action_share"}."""
    from jowa.evaluation.runner import evaluate_run

    envs = min(settings.num_envs, settings.episodes * len(games))
    resolved = resolve(replace(settings, num_envs=envs), games)
    report = evaluate_run(model_run, resolved, out, device="cpu", open_loop_segments=0, restart_other=True)
    return report_returns(report / "report.json")


def report_returns(report: Path) -> dict[str, dict[str, Any]]:
    """An evaluation report.json → game → its mean return and the share of its most played action."""
    games = json.loads(report.read_text())["results"]["games"]
    return {g: {"mean": row["mean"], "top_action": row["metadata"].get("top_action"),
                "top_action_share": row["metadata"].get("top_action_share")} for g, row in games.items()}
