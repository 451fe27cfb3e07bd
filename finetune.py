"""Fine-tune a pretrained JOWA agent on an unseen game from a few thousand transitions (docs/official_jowa.md §9).

    python finetune.py --run runs/tiny --game Breakout --replay data/atari/replay --transitions 5000 --out runs/tiny-breakout
    python finetune.py --run runs/150M --game Pong --replay /data/dqn-replay --from last-fraction=0.2 --imagine --out runs/150M-pong

Data: exactly --transitions transitions of the game from a DQN-Replay directory (or one written by
data/atari/collect.py): --from first | last | random | last-fraction=F (random whole episodes from the
last F of the replay; the paper's expert data came from the last 20 %). Segments of 8 steps, stride 1.
Settings: configs/finetune/{tiny,official}.yaml (tiny for a tiny pretrained run, else official), overridable
as key=value, e.g. train=freeze_backbone task_row=mean tokenizer.train=true evaluation.every=500.
Output: OUT/final (the best model by periodic evaluation; `python plan.py --run OUT` evaluates it),
OUT/last, OUT/report (final evaluation), OUT/finetune.json. --resume continues an interrupted run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from a checkout without installing

from jowa.data.source import SOURCE_HELP  # noqa: E402


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path,
                        help="pretrained run directory (RUN/final/{tokenizer,world_model})")
    parser.add_argument("--game", required=True, help="the game to adapt to, e.g. Breakout")
    parser.add_argument("--replay", required=True, type=Path,
                        help=SOURCE_HELP)
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--transitions", type=int, help="transitions of the game to train on (default 5000)")
    parser.add_argument("--from", dest="select", help="first | last | random | last-fraction=F")
    parser.add_argument("--steps", type=int, help="optimizer steps (official 50000)")
    parser.add_argument("--imagine", action="store_true", help="model-based data synthesis (docs/official_jowa.md §9.1)")
    parser.add_argument("--config", help="fine-tuning config name (configs/finetune/) or YAML path")
    parser.add_argument("--allow-pretrained-game", action="store_true",
                        help="fine-tune on a game the model was pretrained on (not few-shot transfer)")
    parser.add_argument("--pretrained-games",
                        help="comma-separated, when the run does not record them ('none': a model from scratch)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest valid checkpoint in --out")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, …")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the fine-tuning config")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    from jowa.model_files import CheckpointError
    from jowa.finetuning.run import FinetuneOptions, finetune
    from jowa.training.loop import ResumeError, TrainingDiverged

    options = FinetuneOptions(
        run=args.run, game=args.game, out=args.out, replay=args.replay, config=args.config,
        transitions=args.transitions, select=args.select, steps=args.steps, imagine=args.imagine,
        overrides=list(args.overrides), allow_pretrained_game=args.allow_pretrained_game,
        pretrained_games=None if args.pretrained_games is None else
        [g.strip() for g in args.pretrained_games.split(",") if g.strip() and g.strip() != "none"],
        resume=args.resume, device=args.device,
    )
    try:
        summary = finetune(options)
    except (ValueError, FileNotFoundError, ResumeError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    print(f"finetune: {summary['game']} from {summary['pretrained_run']}: {summary['status']} at step "
          f"{summary['step']} in {summary['seconds']:.0f}s ({summary['data']['transitions']} transitions)")
    for record in summary.get("evaluations", []):
        print(f"  eval step {record['step']:>6}: mean return {record['mean_return']:.2f}")
    if "final" in summary:
        final = summary["final"]
        print(f"final model: {final['directory']} ({final['selected']}, step {final['step']})")
    if "report" in summary:
        r = summary["report_returns"]
        print(f"report: {summary['report']} (mean return {r['agent']['mean']:.2f}, random {r['random']['mean']:.2f})")
    return 0 if summary["status"] == "finished" else 3


if __name__ == "__main__":
    sys.exit(main())
