"""Prepare Atari data for stage 2: tokenize episodes (DQN-Replay or Minari) into webdataset token shards.

    python data/atari/prepare.py tokenize --replay data/atari/replay --tokenizer runs/tokenizer --out data/atari/tokens
    python data/atari/prepare.py tokenize ... --runs-per-game 2 --transitions-per-game 10000000   # JOWA's subsample
    python data/atari/prepare.py info --out data/atari/tokens [--verify]    # sizes (and sha256) against index.json
    python data/atari/prepare.py export-minari --replay data/atari/replay --out data/minari   # one dataset per game

--tokenizer is a tokenizer checkpoint directory, "patch-quantizer" (a fixed, non-learned stand-in to test
the pipeline) or "package.module:function". Re-running continues where an interrupted run stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout without installing

from jowa.data.npy_gz import DataFileError  # noqa: E402
from jowa.data.shards import INDEX_NAME, resolve_shards, verify_shards  # noqa: E402
from jowa.data.source import SOURCE_HELP  # noqa: E402
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
        hint = " (--skip-bad skips bad suffixes and goes on)" if isinstance(exc, DataFileError) else ""
        bad_input(f"{exc}{hint}")
    seconds = time.perf_counter() - started
    print(f"{report.shards_written} shards written, {report.shards_kept} kept from before; "
          f"{report.episodes} episodes, {report.transitions} transitions in {seconds:.1f}s")
    if report.read.skipped:
        print(f"skipped {len(report.read.skipped)} bad suffixes:")
        for path, problem in report.read.skipped:
            print(f"  {path}: {problem}")
    print(f"dropped fragments: {report.read.fragments} ({report.read.fragment_rows} rows)")
    info(argparse.Namespace(out=args.out, verify=False))


def export(args: argparse.Namespace) -> None:
    """Every episode of each game of a source as one local Minari dataset atari/<game>/<name>-v0."""
    from jowa.data.minari_export import default_dataset_id, export_minari
    from jowa.data.source import open_source

    try:
        source = open_source(args.replay)
        games = [g.strip() for g in args.games.split(",")] if args.games else source.games()
        if not games:
            bad_input(f"{args.replay}: no games to export")
        for game in games:
            episodes = (e for run in source.runs(game) for e in source.read(game, run))
            print(export_minari(episodes, args.out, default_dataset_id(game, args.name)))
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        bad_input(str(exc))


def bad_input(message: str) -> NoReturn:
    """One line on stderr and exit status 2, as every CLI of the project does for bad input."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def info(args: argparse.Namespace) -> None:
    """Summarise a shard directory after checking every shard against index.json (checksums with --verify)."""
    path = Path(args.out) / INDEX_NAME
    if not path.is_file():
        bad_input(f"{path}: no token-shard index (make shards with `prepare.py tokenize`)")
    index = json.loads(path.read_text())
    try:
        shards = resolve_shards(path)
        checked = verify_shards(shards, checksums=args.verify)
    except ValueError as exc:
        bad_input(str(exc))
    print(f"{index['format']}  tokenizer {index['tokenizer']}  {len(index['shards'])} shards  "
          f"{index['bytes'] / max(index['transitions'], 1):.1f} bytes/transition")
    print(f"{'game':<16}{'task':>5}{'episodes':>10}{'transitions':>13}")
    for game, g in index["games"].items():
        print(f"{game:<16}{g['task']:>5}{g['episodes']:>10}{g['transitions']:>13}")
    unsummed = sum(s.sha256 is None for s in shards)
    if args.verify:
        print(f"verified: {checked} of {len(shards)} shards match their sha256"
              + (f"; {unsummed} were written before checksums were recorded" if unsummed else ""))
    else:
        print("checked: every shard has the size index.json records (--verify also checks sha256)")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    tok = sub.add_parser("tokenize", help="DQN-Replay episodes → token shards")
    tok.add_argument("--replay", required=True, type=Path,
                     help=SOURCE_HELP)
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
    out = sub.add_parser("export-minari", help="episodes of a source → local Minari datasets (one per game)")
    out.add_argument("--replay", required=True, type=Path, help=SOURCE_HELP)
    out.add_argument("--out", required=True, type=Path, help="Minari datasets root (as MINARI_DATASETS_PATH)")
    out.add_argument("--games", help="comma-separated; default: every game of --replay")
    out.add_argument("--name", default="jowa", help="dataset name: ids are atari/<game>/<name>-v0")
    show = sub.add_parser("info", help="summarise a token-shard directory")
    show.add_argument("--out", required=True, type=Path)
    show.add_argument("--verify", action="store_true", help="also check every shard's sha256 (reads them all)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    {"tokenize": tokenize, "export-minari": export, "info": info}[args.command](args)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
