"""Fine-tuning end to end: checks → data → model → training loop (with evaluation) → final model + report.

    out/
      finetune.json        settings, the data picked, evaluations, outcome
      train/               checkpoints/ (exact resume), tb/
      best/                the best model by periodic evaluation (+ best.json)
      last/                the model after the last step
      final/               the selected model (best, or last without evaluation): what plan.py picks up
      report/              the final evaluation report (jowa.evaluation)
      evaluations.json     every periodic evaluation

Every check that can fail — the pretrained run and its tokenizer, the game, the data, the configuration,
an occupied output directory — runs in `prepare()` before any work starts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from jowa.atomic import copy_directory, write_json
from jowa.config import apply_overrides, to_dict
from jowa.evaluation.config import resolve
from jowa.evaluation.runner import EvaluationSettings, evaluate_run
from jowa.finetuning.config import FinetuneConfig, load_finetune, validate
from jowa.finetuning.data import choose, game_spans
from jowa.finetuning.options import FinetuneOptions, FinetunePlan
from jowa.finetuning.task_rows import resolve_task_row
from jowa.games import check_game, task_id
from jowa.model_card import attach_report
from jowa.model_files import CheckpointError, find_model_dir, weights_identity
from jowa.training.loop import LoopSettings, StageOutcome, train_stage

log = logging.getLogger(__name__)
RECORD = "finetune.json"
TRAIN, BEST, LAST, FINAL, REPORT = "train", "best", "last", "final", "report"


# ----------------------------------------------------------------------------------------- checks

def run_record(model_dir: Path) -> dict[str, Any] | None:
    """The pretraining run.json of the run holding `model_dir` (searched upwards), if any."""
    for directory in [model_dir, *model_dir.parents]:
        if (directory / "run.json").is_file():
            return {"directory": directory, **json.loads((directory / "run.json").read_text())}
    return None


def recorded_games(record: dict[str, Any] | None) -> list[str] | None:
    """The games a pretraining run trained on: its world stage's record, else its token index."""
    if record is None:
        return None
    stages = record.get("stages", {})
    if stages.get("world", {}).get("games"):
        return list(stages["world"]["games"])
    tokens = stages.get("tokenize", {}).get("tokens")
    if tokens:
        for candidate in (Path(tokens), record["directory"] / "tokens"):
            if (candidate / "index.json").is_file():
                return list(json.loads((candidate / "index.json").read_text())["games"])
    return None


def _config(options: FinetuneOptions, size: str | None) -> FinetuneConfig:
    name = options.config or ("tiny" if size == "tiny" else "official")
    overrides = list(options.overrides)
    if options.transitions is not None:
        overrides.append(f"data.transitions={options.transitions}")
    if options.select is not None:
        overrides.append(f"data.select={options.select}")
    if options.steps is not None:
        overrides.append(f"steps={options.steps}")
    if options.imagine:
        overrides.append("imagination.enabled=true")
    try:
        config = apply_overrides(load_finetune(name), overrides)
    except (KeyError, TypeError) as error:
        raise ValueError(f"configuration: {error}") from error
    validate(config)
    return config


def _settings(game: str, config: FinetuneConfig, final: bool) -> EvaluationSettings | None:
    e = config.evaluation.final if final else config.evaluation.periodic
    if e.episodes == 0 or (not final and config.evaluation.every == 0):
        return None
    return resolve(replace(e, num_envs=min(e.num_envs, e.episodes), seed=config.seed), [game])


def prepare(options: FinetuneOptions) -> FinetunePlan:
    """Resolve and validate everything; raises with a clear message before any work starts."""
    from jowa.model.world_model import WorldActionModel
    from jowa.tokenizer import Tokenizer
    from jowa.training.distributed import pick_device

    game = check_game(options.game)
    if not options.run.is_dir():
        raise FileNotFoundError(f"pretrained run {options.run} does not exist")
    model_dir = find_model_dir(options.run, "world_model")
    try:
        tokenizer_dir = find_model_dir(options.run, "tokenizer")
    except CheckpointError:
        raise FileNotFoundError(
            f"pretrained run {options.run} has no tokenizer (expected {options.run}/final/tokenizer): fine-tuning "
            f"needs the tokenizer the model was trained with, to encode the new game's frames") from None
    model_config = WorldActionModel.read_config(model_dir)
    tokenizer_config = Tokenizer.read_config(tokenizer_dir)
    if tokenizer_config.vocab_size != model_config.obs_vocab_size:
        raise ValueError(f"{tokenizer_dir}: tokenizer vocabulary {tokenizer_config.vocab_size} != the model's "
                         f"{model_config.obs_vocab_size} ({model_dir}); they are not from the same run")
    record = run_record(model_dir)
    config = _config(options, record.get("size") if record else None)
    if config.data.segment_length > model_config.max_blocks:
        raise ValueError(f"data.segment_length {config.data.segment_length} exceeds the model's "
                         f"{model_config.max_blocks} blocks")

    warnings: list[str] = []
    pretrained = ([check_game(g) for g in options.pretrained_games] if options.pretrained_games is not None
                  else recorded_games(record))
    if pretrained is None:
        warnings.append(f"{options.run} does not record its pretraining games (no run.json with a token index); "
                        f"cannot check that {game} is unseen (pass --pretrained-games)")
    elif game in pretrained:
        message = (f"{game} is one of the games {options.run} was pretrained on ({', '.join(pretrained)}): "
                   f"this is not few-shot transfer to an unseen game")
        if not options.allow_pretrained_game:
            raise ValueError(f"{message}; pass --allow-pretrained-game to fine-tune anyway")
        warnings.append(message)
    task_row = resolve_task_row(config.task_row, game, pretrained)

    spans = game_spans(options.replay, game)
    picks = choose(spans, config.data.transitions, config.data.select, config.seed)

    checkpoints = options.out / TRAIN / "checkpoints"
    if not options.resume and checkpoints.is_dir() and any(checkpoints.glob("step_*")):
        raise ValueError(f"{options.out} already holds a fine-tuning run ({checkpoints}); "
                         f"continue it with --resume or choose another --out")
    device = pick_device(options.device, 0)
    for w in warnings:
        log.warning(w)
    return FinetunePlan(config, game, model_dir, tokenizer_dir, pretrained, task_row, picks,
                        _settings(game, config, final=False), _settings(game, config, final=True), device, warnings)


# ----------------------------------------------------------------------------------------- the run

def _fingerprint(plan: FinetunePlan) -> dict[str, str]:
    picks = json.dumps([[p.span.run, p.span.start, p.first, p.length] for p in plan.picks])
    return {"game": plan.game, "pretrained": weights_identity(plan.model_dir),
            "tokenizer": weights_identity(plan.tokenizer_dir),
            "data": hashlib.sha256(picks.encode()).hexdigest()[:16]}


def publish(source: Path, target: Path) -> None:
    """Copy a directory of module checkpoints to `target` without the training state."""
    copy_directory(source, target, ignore=shutil.ignore_patterns("engine", "*.pt", "manifest.json"))


def finetune(options: FinetuneOptions) -> dict[str, Any]:
    """Fine-tune; returns a summary (also written to out/finetune.json)."""
    from jowa.finetuning.stage import build_finetune
    from jowa.training.distributed import init_distributed
    from jowa.training.engine_choice import resolve_precision

    plan = prepare(options)
    ctx = init_distributed(str(plan.device))
    if ctx.world_size > 1:
        raise ValueError("fine-tuning runs in one process (the official fine-tuning used one GPU): "
                         "launch it with python, not torchrun or deepspeed")
    config, out = plan.config, options.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    facts = _fingerprint(plan)
    summary: dict[str, Any] = {
        "pretrained_run": str(options.run), "model": str(plan.model_dir), "tokenizer": str(plan.tokenizer_dir),
        "game": plan.game, "task": task_id(plan.game), "task_row": plan.task_row,
        "pretrained_games": plan.pretrained_games, "replay": str(options.replay), "warnings": plan.warnings,
        "config": to_dict(config), "fingerprint": facts, "status": "running",
    }
    write_json(out / RECORD, summary)

    built = build_finetune(plan, options, facts)
    summary["data"] = {"transitions": built.data.transitions, "episodes": len(built.data.episodes),
                       "segments": built.source.num_segments, "pieces": built.data.describe()}
    summary["parameters"] = built.parameter_counts
    write_json(out / RECORD, summary)
    settings = LoopSettings("torch", Path("unused"), resolve_precision(config.precision, plan.device),
                            config.checkpoint, config.logging, config.max_bad_steps, resume=options.resume)
    outcome: StageOutcome = train_stage(built.stage, ctx, settings, out / TRAIN,
                                        {"finetune": to_dict(config), "game": plan.game})
    summary.update(status=outcome.status, step=outcome.state.step, skipped_steps=outcome.state.skipped_steps,
                   losses=outcome.phase_losses, checkpoint=str(outcome.checkpoint),
                   train_seconds=round(time.perf_counter() - started, 1))
    if built.evaluation is not None:
        summary["evaluations"] = [asdict(r) for r in built.evaluation.history]
    if outcome.status == "finished":
        assert outcome.checkpoint is not None
        publish(outcome.checkpoint, out / LAST)
        best = built.evaluation.best if built.evaluation is not None else None
        publish(out / BEST if best is not None else out / LAST, out / FINAL)
        summary["final"] = {"directory": str(out / FINAL), "selected": "best" if best else "last",
                            "step": best.step if best else outcome.state.step,
                            "mean_return": best.mean_return if best else None}
        if plan.report is not None:
            report = evaluate_run(out / FINAL, plan.report, out / REPORT, str(plan.device), random_baseline=True,
                                  progress=options.progress, restart_other=True)
            summary["report"] = str(report / "report.md")
            summary["model_card"] = str(attach_report(out / FINAL / "world_model", report))
            written = json.loads((report / "report.json").read_text())
            summary["report_returns"] = {
                side: {k: written[key]["games"][plan.game][k] for k in ("mean", "returns")}
                for side, key in (("agent", "results"), ("random", "baseline"))
            }
    summary["seconds"] = round(time.perf_counter() - started, 1)
    write_json(out / RECORD, summary)
    return summary
