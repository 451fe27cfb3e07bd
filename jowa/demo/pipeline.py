"""The demo, stage by stage, in one output directory:

    OUT/
      demo.json        settings, and each finished stage with its wall time (a rerun skips finished stages)
      replay/          random-policy transitions of the pretraining games and the held-out game
      pretrain/        the pretraining run (pretrain.py's layout: tokenizer/, tokens/, world/, final/)
      finetune/        fine-tuning on the held-out game (finetune.py's layout: final/ = best checkpoint)
      eval/            plan.py reports: {pretrained,finetuned}_{plan,greedy}, each beside a random policy
      report/          report.md with its plots, reconstructions and videos

Each stage calls the library function behind the matching command (collect.py, pretrain.py, finetune.py,
plan.py), so a crash loses at most the stage in progress, and that one resumes from its checkpoints.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from jowa import staged_run
from jowa.atomic import write_json
from jowa.config import to_dict
from jowa.demo.config import DemoConfig

RECORD = "demo.json"
STAGES = ("collect", "pretrain", "finetune", "evaluate", "report")
# (directory under eval/, model, horizon 0 = greedy)
EVALUATIONS = (("pretrained_plan", "pretrain", True), ("pretrained_greedy", "pretrain", False),
               ("finetuned_plan", "finetune", True), ("finetuned_greedy", "finetune", False))


def open_record(out: Path, config: DemoConfig) -> dict[str, Any]:
    """demo.json of a previous run with the same settings, or a fresh one; other settings are an error."""
    path = out / RECORD
    settings = to_dict(config)

    def check_same(record: dict[str, Any]) -> None:
        if record.get("config") != settings:
            raise ValueError(f"{out} holds a demo run with other settings ({path}); choose another --out "
                             "or remove it")

    return staged_run.open_record(path, {"config": settings, "stages": {}}, check_same,
                                  f"{out} exists and is not a demo run directory; choose another --out")


def collect_stage(out: Path, config: DemoConfig) -> dict[str, Any]:
    from jowa.data.collect import collect

    replay = out / "replay"
    shutil.rmtree(replay, ignore_errors=True)  # a crash mid-collection leaves partial files: start over (seconds)
    c = config.collect
    stats = collect(config.games, c.transitions, replay, sticky=c.sticky, seed=c.seed)
    stats.update(collect([config.held_out], c.held_out_transitions, replay, sticky=c.sticky, seed=c.seed + 1))
    return {game: {"transitions": s.transitions, "episodes": s.episodes, "game_overs": s.game_overs,
                   "mean_return": sum(s.returns) / len(s.returns) if s.returns else None}
            for game, s in stats.items()}


def pretrain_stage(out: Path, config: DemoConfig) -> dict[str, Any]:
    from jowa.training.distributed import init_distributed
    from jowa.training.pretrain import PretrainOptions, pretrain

    options = PretrainOptions(size=config.pretrain.size, out=out / "pretrain", replay=out / "replay",
                              games=config.games, resume=True, overrides=list(config.pretrain.overrides))
    summary = pretrain(options, init_distributed())
    if "interrupted" in summary:
        raise RuntimeError(f"pretraining stopped early in stage {summary['interrupted']}; run the demo again")
    return summary


def finetune_stage(out: Path, config: DemoConfig) -> dict[str, Any]:
    from jowa.finetuning.run import FinetuneOptions, finetune

    options = FinetuneOptions(run=out / "pretrain", game=config.held_out, out=out / "finetune",
                              replay=out / "replay", transitions=config.finetune.transitions,
                              overrides=list(config.finetune.overrides), resume=True)
    summary = finetune(options)
    if summary["status"] != "finished":
        raise RuntimeError(f"fine-tuning stopped early ({summary['status']}); run the demo again")
    return {key: summary[key] for key in ("step", "final", "evaluations", "data", "train_seconds") if key in summary}


def evaluate_stage(out: Path, config: DemoConfig) -> dict[str, Any]:
    """Every game, planning and greedy, beside a random policy: pretraining games with the pretrained
    model, the held-out game with the fine-tuned one."""
    from jowa.evaluation.config import resolve
    from jowa.evaluation.runner import evaluate_run

    e = config.evaluation
    reports = {}
    for name, model, planning in EVALUATIONS:
        games = config.games if model == "pretrain" else [config.held_out]
        settings = resolve(replace(e, horizon=e.horizon if planning else 0, seed=config.seed), games)
        report = evaluate_run(out / model, settings, out / "eval" / name, random_baseline=planning,
                              video_frames=e.video_frames if planning else 0, restart_other=True)
        reports[name] = str(report)
    return reports


def report_stage(out: Path, config: DemoConfig) -> dict[str, Any]:
    from jowa.demo.report import write_demo_report

    return {"report": str(write_demo_report(out, config, json.loads((out / RECORD).read_text())))}


STAGE_FUNCTIONS: dict[str, Callable[[Path, DemoConfig], dict[str, Any]]] = {
    "collect": collect_stage, "pretrain": pretrain_stage, "finetune": finetune_stage,
    "evaluate": evaluate_stage, "report": report_stage,
}


def run_demo(out: Path, config: DemoConfig, log: Callable[[str], None] = print) -> Path:
    """Run the stages not yet finished; returns the report's path."""
    record = open_record(out, config)
    for stage in STAGES:
        done = record["stages"].get(stage)
        if done is not None and stage != "report":  # the report is cheap and always rewritten
            log(f"[demo] {stage}: done in an earlier run ({done['seconds']:.0f}s), skipped")
            continue
        log(f"[demo] {stage} …")
        started = time.perf_counter()
        result = STAGE_FUNCTIONS[stage](out, config)
        seconds = time.perf_counter() - started
        record["stages"][stage] = {"seconds": round(seconds, 1), "result": result}
        write_json(out / RECORD, record)
        log(f"[demo] {stage}: {seconds:.0f}s")
    return Path(record["stages"]["report"]["result"]["report"])
