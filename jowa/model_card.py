"""Model cards (README.md beside config.json + model.safetensors) with evaluation results as a Hub
`model-index`, in the shape JAT's Atari cards use: per game a reinforcement-learning task whose dataset is
`atari-<game>` and whose metrics are the total reward ("mean +/- std" over episodes) and, where the game
has reference scores, the human-normalised score.

    python -m jowa.model_card MODEL_DIR REPORT_DIR   # attach a plan.py report's results to MODEL_DIR/README.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from jowa.atomic import write_text

CARD_NAME = "README.md"
LIBRARY = "jowa"
TAGS = ["reinforcement-learning", "atari", "world-model", "offline-rl", "jowa"]
KINDS = {"world_model": ("world-action model", "jowa.model.world_model.WorldActionModel"),  # kind → (what, loader)
         "tokenizer": ("frame tokenizer (VQ-VAE)", "jowa.tokenizer.Tokenizer")}
TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

A JOWA {{ what }} ("Scaling Offline Model-Based RL via Jointly-Optimized World-Action Model Pretraining",
Cheng et al., ICLR 2025), saved by the `jowa` library: `config.json` (architecture, and the size and sha256 of
the weights) and `model.safetensors`. Load it with `{{ loader }}.from_pretrained(directory)`.

{{ results_text }}
"""


def dataset_type(game: str) -> str:
    """`atari-<game>` in JAT's spelling: lower case, words joined by nothing (SpaceInvaders → spaceinvaders)."""
    return f"atari-{re.sub(r'[^a-z0-9]', '', game.lower())}"


def eval_results(games: Mapping[str, Mapping[str, Any]]) -> list[EvalResult]:
    """Hub eval results from a report's per-game summaries (report.json `results.games`)."""
    results = []
    for game, g in games.items():
        common = {"task_type": "reinforcement-learning", "task_name": "Reinforcement Learning",
                  "dataset_type": dataset_type(game), "dataset_name": f"Atari {game}"}
        results.append(EvalResult(**common, metric_type="total_reward", metric_name="Total reward",
                                  metric_value=f"{g['mean']:.2f} +/- {g['std']:.2f}"))
        if g.get("hns") is not None:
            results.append(EvalResult(**common, metric_type="human_normalized_score",
                                      metric_name="Human-normalized score", metric_value=round(float(g["hns"]), 4)))
    return results


def results_text(games: Mapping[str, Mapping[str, Any]] | None) -> str:
    if not games:
        return "No evaluation results are attached (`python -m jowa.model_card MODEL_DIR REPORT_DIR` adds them)."
    rows = [f"| {game} | {g['num_episodes']} | {g['mean']:.2f} ± {g['std']:.2f} | "
            f"{'n/a' if g.get('hns') is None else format(g['hns'], '.3f')} |" for game, g in games.items()]
    return "\n".join(["## Evaluation", "", "| game | episodes | return (mean ± std) | HNS |", "|---|---:|---:|---:|",
                      *rows])


def model_card(kind: str, model_name: str, games: Mapping[str, Mapping[str, Any]] | None = None) -> ModelCard:
    """The card of a `kind` model directory; `games`: report.json `results.games` (None: no results yet)."""
    what, loader = KINDS.get(kind, (kind, "the class that saved it"))
    data = ModelCardData(library_name=LIBRARY, tags=TAGS, model_name=model_name,
                         eval_results=eval_results(games) if games else None)
    return ModelCard.from_template(data, template_str=TEMPLATE, what=what, loader=loader, model_name=model_name,
                                   results_text=results_text(games))


def attach_report(model_dir: str | Path, report_dir: str | Path) -> Path:
    """Rewrite MODEL_DIR/README.md with the results of the evaluation report in REPORT_DIR."""
    model_dir, report_dir = Path(model_dir), Path(report_dir)
    meta = json.loads((model_dir / "config.json").read_text())
    report = json.loads((report_dir / "report.json").read_text())
    card = model_card(meta.get("kind", "model"), f"jowa-{meta.get('kind', 'model')}", report["results"]["games"])
    write_text(model_dir / CARD_NAME, str(card))
    return model_dir / CARD_NAME


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a model directory (config.json + model.safetensors)")
    parser.add_argument("report", type=Path, help="a plan.py report directory (report.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    for path in (args.model / "config.json", args.report / "report.json"):
        if not path.is_file():
            print(f"error: {path} does not exist", file=sys.stderr)
            return 2
    print(attach_report(args.model, args.report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
