"""The whole product on a laptop CPU in one command: collect random-policy Atari data, pretrain the tiny
tokenizer and world-action model on three games, fine-tune on a held-out game from 5k transitions,
evaluate with planning and greedily against a random policy, and write a report.

    python demo.py                                  # → runs/demo/report/report.md (about 15 min, 2 cores)
    python demo.py --out runs/demo2 evaluation.episodes=8 held_out=Breakout games=[Pong,Assault]

Settings: configs/demo.yaml, overridable as key=value. Rerunning the same command after a crash skips the
finished stages and resumes the interrupted one from its checkpoints.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from a checkout without installing


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="demo directory")
    parser.add_argument("--config", type=Path, help="demo settings (default configs/demo.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. collect.transitions=4000")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    from jowa.model_files import CheckpointError
    from jowa.demo.config import load_demo
    from jowa.demo.pipeline import run_demo
    from jowa.training.loop import ResumeError, TrainingDiverged

    started = time.perf_counter()
    try:
        config = load_demo(*([args.config] if args.config else []), overrides=args.overrides)
        report = run_demo(args.out, config)
    except (ValueError, FileNotFoundError, FileExistsError, ResumeError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    except (TrainingDiverged, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    print(f"demo finished in {(time.perf_counter() - started) / 60:.1f} min; report: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
