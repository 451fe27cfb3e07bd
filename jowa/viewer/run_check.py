"""Which model directory `play.py --run RUN --game G` means, and whether that model knows G: checked
before any server starts, so that a bad command fails in one line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from jowa.games import check_game
from jowa.model_files import CheckpointError, find_model_dir

DEMO_RECORD = "demo.json"
FINETUNE_RECORD = "finetune.json"


@dataclass(frozen=True)
class ResolvedRun:
    run: Path  # the directory whose world model and tokenizer are played
    game: str
    known_games: tuple[str, ...] | None  # None: the run does not record what it was trained on
    note: str | None = None  # a warning worth printing (e.g. unrecorded games)


def _demo_member(run: Path, game: str) -> Path:
    """In a `make demo` directory: the fine-tuned model for the held-out game, the pretrained one otherwise."""
    config = json.loads((run / DEMO_RECORD).read_text()).get("config", {})
    return run / ("finetune" if game == config.get("held_out") else "pretrain")


def _recorded_games(model_dir: Path) -> tuple[str, ...] | None:
    """Games the model was trained on: a fine-tuning record's game (plus its pretraining games), else the
    pretraining run's record; searched upwards from the model directory."""
    from jowa.finetuning.run import recorded_games, run_record

    for directory in [model_dir, *model_dir.parents]:
        path = directory / FINETUNE_RECORD
        if path.is_file():
            record = json.loads(path.read_text())
            return tuple([record["game"], *(record.get("pretrained_games") or [])])
    games = recorded_games(run_record(model_dir))
    return None if games is None else tuple(games)


def resolve_run(run: str | Path, game: str) -> ResolvedRun:
    """Raises ValueError (unknown game, a model that was not trained on it) or FileNotFoundError (no run)."""
    game = check_game(game)
    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(f"run directory not found: {run}")
    if (run / DEMO_RECORD).is_file():
        run = _demo_member(run, game)
    try:
        model_dir = find_model_dir(run, "world_model")
        find_model_dir(run, "tokenizer")
    except CheckpointError as error:
        raise FileNotFoundError(str(error)) from None
    known = _recorded_games(model_dir.resolve())
    if known is None:
        return ResolvedRun(run, game, None, f"{run} does not record the games it was trained on; "
                                            f"{game} may be unknown to the model")
    if game not in known:
        raise ValueError(f"the model of {run} was trained on {', '.join(known)}, not {game} "
                         f"(fine-tune it first: python finetune.py --run {run} --game {game} ...)")
    return ResolvedRun(run, game, known)
