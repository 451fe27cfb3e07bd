"""The study's diagnostics: the `diag/*` series the training hooks logged (first → last), and the measures a
black background cannot flatter on the study's own data, computed with the functions the demo report uses
(jowa.demo.measures renders them): the shared tokenizer on every game, each size's world-action model on
episodes of the token shards that end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jowa.demo.measures import TRAINING_KEYS
from jowa.diagnostics import report_rows
from jowa.study.stages import Study
from jowa.training.logger import read_metrics


def training_series(s: Study) -> list[dict[str, Any]]:
    """First and last logged value of the key diag/* series: the tokenizer stage, then each size's world stage."""
    runs = [("tokenizer", "tokenizer", s.tokenizer_run / "tokenizer" / "metrics.jsonl")]
    runs += [(f"world ({size})", "world", s.model(size) / "world" / "metrics.jsonl") for size in s.config.pretrain.sizes]
    rows = []
    for label, kind, path in runs:
        series = read_metrics(path) if path.is_file() else {}
        for key in TRAINING_KEYS[kind]:
            values = series.get(f"diag/{key}")
            if values:
                steps = sorted(values)
                rows.append({"stage": label, "measure": key, "first_step": steps[0], "last_step": steps[-1],
                             "first": values[steps[0]], "last": values[steps[-1]]})
    return rows


def tokenizer_rows(s: Study) -> list[dict[str, Any]]:
    """The shared tokenizer on every game (the held-out game it never saw), and the held-out game through
    each fine-tuned run's tokenizer."""
    from jowa.model_files import find_model_dir

    games = s.config.all_games
    samples = report_rows.frame_samples(s.behaviour, games, s.config.seed)
    runs = [("pretrained", s.tokenizer_dir, games)]
    runs += [(f"fine-tuned ({start})", find_model_dir(s.finetuned(start), "tokenizer"), [s.config.held_out])
             for start in ("pretrained", "scratch")]
    return report_rows.tokenizer_rows(runs, samples)


def world_rows(s: Study, size: str) -> list[dict[str, Any]]:
    """One size's world-action model on episodes that end (whole, or their last steps) of each pretraining game."""
    from jowa.model_files import find_model_dir

    model_dir = find_model_dir(s.model(size), "world_model")
    planning = (s.config.evaluation.context, s.config.evaluation.beam_width)
    return report_rows.world_rows(model_dir, s.tokens, s.config.games, {"size": size}, planning)


def measure_all(s: Study) -> dict[str, Any]:
    return {"training": training_series(s), "tokenizer": tokenizer_rows(s),
            "world": {size: world_rows(s, size) for size in s.config.pretrain.sizes}}


def diagnostics_lines(data: dict[str, Any]) -> list[str]:
    """Markdown of the diagnostics section (the tables and verdicts of jowa.demo.measures)."""
    from jowa.demo.measures import _f, tokenizer_lines, world_lines

    md = ["Measures a black background or a static frame cannot flatter, each beside a trivial baseline "
          "(the same as the demo report's; see jowa/diagnostics): tokenizer error on foreground and changed "
          "pixels beside drawing the background, world-model accuracy on changed tokens beside copying the "
          "last frame, the TD loss beside ln(atoms).", ""]
    if data["training"]:
        md += ["During training (the fixed samples of the training hooks, all games together; `diag/*` in "
               "metrics.jsonl):", "", "| stage | measure (steps) | first logged | last logged |",
               "| --- | --- | ---: | ---: |"]
        md += [f"| {r['stage']} | {r['measure']} ({r['first_step']} → {r['last_step']}) | {_f(r['first'])} | "
               f"{_f(r['last'])} |" for r in data["training"]]
        md.append("")
    md += ["**Tokenizers** on the behaviour data:", "", *tokenizer_lines(data["tokenizer"]), ""]
    for size, rows in data["world"].items():
        md += [f"**World-action model `{size}`** on episodes that end (whole, or their last steps):", "",
               *world_lines(rows), ""]
    return md


def reconstruction_grid(s: Study, path: Path, frames_per_game: int = 6) -> list[dict[str, Any]]:
    """Frames of every game over their reconstruction by the shared tokenizer (jowa.demo.report's pieces)."""
    import imageio.v3 as iio
    import numpy as np

    from jowa.demo.report import reconstructions, sample_frames
    from jowa.training.tokenizer_stage import grid_image

    games = s.config.all_games
    samples = {g: sample_frames(s.behaviour, g, frames_per_game, 50 * frames_per_game) for g in games}
    originals, rebuilt, stats = reconstructions(s.tokenizer_dir, [("pretrained", g) for g in games], samples)
    iio.imwrite(path, grid_image(np.concatenate(originals), np.concatenate(rebuilt), columns=frames_per_game),
                extension=".png")
    return stats
