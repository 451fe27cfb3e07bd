"""Pretrain a JOWA world-action model from replay data: tokenizer → token shards → world-action model.

    python pretrain.py --size tiny --replay data/atari/replay --out runs/tiny          # one CPU / GPU
    deepspeed pretrain.py --size 150M --replay data/atari/replay --out runs/150M       # N GPUs (ZeRO-1)
    deepspeed pretrain.py --size 150M --tokens data/atari/tokens --tokenizer runs/tok/final/tokenizer --out …
    torchrun --nproc_per_node 8 pretrain.py …                                          # plain DDP

Each stage can run alone (--stage tokenizer|tokenize|world); run.json in --out records what is done,
so re-running the same command continues with the next stage, and --resume continues an interrupted
stage from its newest valid checkpoint. Settings: configs/training/{tiny,official}.yaml, overridable
as key=value (training keys, e.g. world.steps=1000 engine.deepspeed_config=configs/deepspeed/zero2.json)
or model.key=value (the size preset, e.g. model.tokenizer.lpips_net=alex).
Global batch = micro batch per rank × grad_accum × ranks; the configs give the global batch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from a checkout without installing

from jowa.data.source import SOURCE_HELP  # noqa: E402


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", required=True, help="tiny, 40M, 70M or 150M")
    parser.add_argument("--out", required=True, type=Path, help="run directory")
    parser.add_argument("--replay", type=Path, help=SOURCE_HELP)
    parser.add_argument("--tokens", type=Path, help="existing token shards (skips the tokenize stage)")
    parser.add_argument("--tokenizer", type=Path, help="existing tokenizer checkpoint (skips stage 1)")
    parser.add_argument("--games", help="comma-separated subset of the games under --replay")
    parser.add_argument("--stage", default="all", choices=["all", "tokenizer", "tokenize", "world"])
    parser.add_argument("--resume", action="store_true", help="continue a stage from its newest valid checkpoint")
    parser.add_argument("--config", help="training config name (configs/training/) or YAML path")
    parser.add_argument("--steps", type=int, help="shortcut for world.steps=N")
    parser.add_argument("--tokenizer-steps", type=int, help="shortcut for tokenizer.steps=N")
    parser.add_argument("--verify", action="store_true", help="check the sha256 of existing token shards first")
    parser.add_argument("--device", default="auto",
                        help="auto (this rank's GPU when there is one, else the CPU), cpu or cuda; "
                             "cuda without a usable GPU is an error, never a silent CPU run")
    parser.add_argument("--local_rank", type=int, default=0, help=argparse.SUPPRESS)  # from the deepspeed launcher
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    return parser.parse_intermixed_args(argv)  # key=value overrides may sit between options


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from jowa.model_files import CheckpointError
    from jowa.training.distributed import finish, init_distributed
    from jowa.training.loop import ResumeError, TrainingDiverged
    from jowa.training.pretrain import PretrainOptions, device_summary, pretrain

    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"world.steps={args.steps}")
    if args.tokenizer_steps is not None:
        overrides.append(f"tokenizer.steps={args.tokenizer_steps}")
    options = PretrainOptions(
        size=args.size, out=args.out, replay=args.replay, tokens=args.tokens, tokenizer=args.tokenizer,
        stage=args.stage, resume=args.resume, training=args.config, overrides=overrides,
        games=[g.strip() for g in args.games.split(",") if g.strip()] if args.games else None, verify=args.verify,
    )
    code = 0
    try:
        ctx = init_distributed(args.device)
    except ValueError as error:  # --device cuda without a GPU
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    try:
        if ctx.is_main:
            print(f"pretrain: size {args.size} → {args.out} ({device_summary(ctx)})", flush=True)
        pretrain(options, ctx)
    except (ValueError, FileNotFoundError, ResumeError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        code = 2
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        code = 1
    if ctx.world_size > 1 or ctx.launcher != "single":
        finish(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
