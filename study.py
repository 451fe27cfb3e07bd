"""The study of issue #13 in one resumable command: behaviour data from learning agents for 4 pretraining
games and 1 held-out game, one tokenizer, a world-action model per size, evaluation (planning, greedy,
random, the behaviour agent), fine-tuning on the held-out game from pretrained and from scratch, RESULTS.md.

    python study.py --budget cpu                              # ≤ 2.5 h on 2 CPU cores → runs/study-cpu/RESULTS.md
    python study.py --budget cpu --behaviour runs/behaviour   # reuse behaviour runs made earlier (skips that stage)
    python study.py --budget gpu evaluation.episodes=16       # ≤ 20 min on one GPU, a larger scale

Settings: configs/study/<budget>.yaml (or a YAML path), overridable as key=value. Rerunning the same command
skips the finished stages and continues the interrupted one. Exit status: 0 done, 1 failure, 2 bad input,
3 stopped early by SIGTERM or Ctrl-C (state saved; rerun to continue).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from a checkout without installing


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", default="cpu", help="cpu, gpu (configs/study/) or a YAML path")
    parser.add_argument("--out", type=Path, help="study directory (default runs/study-<budget>)")
    parser.add_argument("--behaviour", type=Path,
                        help="existing behaviour runs ({Game}/{run}/, collect.py --agent): skip making them")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. evaluation.episodes=4")
    return parser.parse_args(argv)


def _interrupt(signum, frame) -> None:  # SIGTERM between the libraries' own handlers: stop like Ctrl-C
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    from jowa.model_files import CheckpointError
    from jowa.study.config import load_study
    from jowa.study.pipeline import run_study
    from jowa.study.stages import StudyStopped
    from jowa.training.loop import ResumeError, TrainingDiverged

    started = time.perf_counter()
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        config = load_study(args.budget, args.overrides)
        out = args.out or Path("runs") / f"study-{Path(args.budget).stem}"
        results = run_study(out, config, args.behaviour)
    except (ValueError, FileNotFoundError, FileExistsError, ResumeError, CheckpointError) as error:
        print(f"error: {str(error).splitlines()[0] if str(error) else type(error).__name__}", file=sys.stderr, flush=True)
        return 2
    except (StudyStopped, KeyboardInterrupt) as error:
        print(f"stopped: {error or 'interrupted'}; rerun the same command to continue", file=sys.stderr, flush=True)
        return 3
    except (TrainingDiverged, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"study finished in {(time.perf_counter() - started) / 60:.1f} min; results: {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
