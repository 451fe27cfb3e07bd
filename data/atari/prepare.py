"""Prepare Atari data for stage 2: tokenize DQN-Replay episodes into webdataset token shards.

    python data/atari/prepare.py tokenize --replay data/atari/replay --tokenizer runs/tokenizer --out data/atari/tokens
    python data/atari/prepare.py tokenize ... --runs-per-game 2 --transitions-per-game 10000000   # JOWA's subsample
    python data/atari/prepare.py info --out data/atari/tokens

--tokenizer is a tokenizer checkpoint directory, "patch-quantizer" (a fixed, non-learned stand-in to test
the pipeline) or "package.module:function". Re-running continues where an interrupted run stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from jowa.data.npy_gz import DataFileError  # noqa: E402
from jowa.data.shards import INDEX_NAME  # noqa: E402
from jowa.data.tokenize_replay import tokenize_replay  # noqa: E402


def tokenize(args: argparse.Namespace) -> None:
    games = [g.strip() for g in args.games.split(",")] if args.games else None
    started = time.perf_counter()
    try:
        report = tokenize_replay(
            args.replay, args.tokenizer, args.out, games=games, runs_per_game=args.runs_per_game,
            transitions_per_game=args.transitions_per_game, seed=args.seed, batch_frames=args.batch_frames,
            device=args.device, max_steps_per_shard=args.shard_steps, skip_bad=args.skip_bad,
            assume_full_chunks=args.assume_full_chunks,
        )
    except (ValueError, FileNotFoundError) as exc:
        if isinstance(exc, DataFileError):
            raise SystemExit(f"error: {exc}\n(--skip-bad skips bad suffixes and goes on)") from None
        raise SystemExit(f"error: {exc}") from None
    seconds = time.perf_counter() - started
    print(f"{report.shards_written} shards written, {report.shards_kept} kept from before; "
          f"{report.episodes} episodes, {report.transitions} transitions in {seconds:.1f}s")
    if report.read.skipped:
        print(f"skipped {len(report.read.skipped)} bad suffixes:")
        for path, problem in report.read.skipped:
            print(f"  {path}: {problem}")
    print(f"dropped fragments: {report.read.fragments} ({report.read.fragment_rows} rows)")
    info(argparse.Namespace(out=args.out))


def info(args: argparse.Namespace) -> None:
    index = json.loads((Path(args.out) / INDEX_NAME).read_text())
    print(f"{index['format']}  tokenizer {index['tokenizer']}  {len(index['shards'])} shards  "
          f"{index['bytes'] / max(index['transitions'], 1):.1f} bytes/transition")
    print(f"{'game':<16}{'task':>5}{'episodes':>10}{'transitions':>13}")
    for game, g in index["games"].items():
        print(f"{game:<16}{g['task']:>5}{g['episodes']:>10}{g['transitions']:>13}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    tok = sub.add_parser("tokenize", help="DQN-Replay episodes → token shards")
    tok.add_argument("--replay", required=True, type=Path, help="DQN-Replay root ({Game}/{run}/replay_logs)")
    tok.add_argument("--tokenizer", required=True, help="checkpoint dir, 'patch-quantizer' or 'module:function'")
    tok.add_argument("--out", required=True, type=Path)
    tok.add_argument("--games", help="comma-separated; default: every game under --replay")
    tok.add_argument("--runs-per-game", type=int, help="JOWA subsample: runs drawn per game (official: 2)")
    tok.add_argument("--transitions-per-game", type=int, help="JOWA subsample: ~transitions per game (official: 1e7)")
    tok.add_argument("--seed", type=int, default=0)
    tok.add_argument("--batch-frames", type=int, default=4096, help="frames per encoder batch")
    tok.add_argument("--device", default="cuda" if _cuda() else "cpu")
    tok.add_argument("--shard-steps", type=int, default=100_000, help="transitions per shard (rolls at episodes)")
    tok.add_argument("--skip-bad", action="store_true", help="log and skip bad replay suffixes")
    tok.add_argument("--assume-full-chunks", action="store_true",
                     help="accept suffixes without add_count (downloads of the 4 $store$ arrays only)")
    show = sub.add_parser("info", help="summarise a token-shard directory")
    show.add_argument("--out", required=True, type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.command == "tokenize":
        tokenize(args)
    else:
        info(args)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
