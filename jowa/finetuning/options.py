"""What a fine-tuning run is asked (`FinetuneOptions`, from the command line) and what `prepare` resolved
from it (`FinetunePlan`): the shared vocabulary of `run.py` (checks, the run) and `stage.py` (the models,
data and training stage), kept apart so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from jowa.evaluation.runner import EvaluationSettings
from jowa.finetuning.config import FinetuneConfig
from jowa.finetuning.data import Pick


@dataclass
class FinetuneOptions:
    run: Path  # the pretrained run (or a checkpoint directory inside it)
    game: str
    out: Path
    replay: Path
    config: str | None = None  # configs/finetune/<name>.yaml or a path; default: tiny for tiny runs, else official
    transitions: int | None = None
    select: str | None = None  # first | last | random | last-fraction=F
    steps: int | None = None
    imagine: bool = False
    overrides: list[str] = field(default_factory=list)
    allow_pretrained_game: bool = False
    pretrained_games: list[str] | None = None  # when the run does not record them
    resume: bool = False
    device: str = "auto"
    progress: bool = True


@dataclass
class FinetunePlan:
    config: FinetuneConfig
    game: str
    model_dir: Path
    tokenizer_dir: Path
    pretrained_games: list[str] | None
    task_row: str  # resolved: own, mean or a game
    picks: list[Pick]
    evaluation: EvaluationSettings | None
    report: EvaluationSettings | None
    device: torch.device
    warnings: list[str] = field(default_factory=list)
