"""Convert official JOWA checkpoints into jowa checkpoint directories.

    python -m jowa.compat.import_official --model JOWA_150M.pt --tokenizer tokenizer.pt --out runs/official-150M

writes `OUT/world_model/` and `OUT/tokenizer/` (safetensors + config.json), loadable with
`WorldActionModel.from_pretrained` / `Tokenizer.from_pretrained`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jowa.compat.official import (
    infer_tokenizer_config, infer_world_model_config, load_into, load_state_dict, tokenizer_state, world_model_state,
)
from jowa.config import SIZES, WorldModelConfig
from jowa.model.world_model import WorldActionModel


def import_world_model(path: str | Path, size: str | None = None, config: WorldModelConfig | None = None) -> WorldActionModel:
    """Build our model from an official JOWA `.pt` (config inferred from shapes unless given)."""
    state = load_state_dict(path)
    config = config or infer_world_model_config(state, size)
    model = WorldActionModel(config)
    load_into(model, world_model_state(state, config), str(path))
    return model


def import_tokenizer(path: str | Path, config=None):  # -> jowa.tokenizer.Tokenizer
    from jowa.tokenizer import Tokenizer

    state = load_state_dict(path)
    tokenizer = Tokenizer(config or infer_tokenizer_config(state))
    load_into(tokenizer, tokenizer_state(state), str(path))
    return tokenizer


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="official JOWA_*.pt")
    parser.add_argument("--tokenizer", type=Path, help="official tokenizer.pt")
    parser.add_argument("--out", type=Path, required=True, help="run directory to write")
    parser.add_argument("--size", choices=SIZES, help="official size (sets the number of attention heads)")
    parser.add_argument("--num-heads", type=int, help="attention heads, for a model that is not an official size")
    args = parser.parse_args(argv)
    if not args.model and not args.tokenizer:
        parser.error("give --model and/or --tokenizer")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        if args.model:
            config = None
            if args.num_heads:
                config = infer_world_model_config(load_state_dict(args.model), args.size)
                config.num_heads = args.num_heads
            model = import_world_model(args.model, args.size, config)
            target = model.save_pretrained(args.out / "world_model", extra={"imported_from": str(args.model)})
            print(f"world model: {sum(p.numel() for p in model.parameters()):,} parameters -> {target}")
        if args.tokenizer:
            tokenizer = import_tokenizer(args.tokenizer)
            target = tokenizer.save_pretrained(args.out / "tokenizer", extra={"imported_from": str(args.tokenizer)})
            print(f"tokenizer: {sum(p.numel() for p in tokenizer.parameters()):,} parameters -> {target}")
    except (ValueError, FileNotFoundError) as error:  # OfficialCheckpointError is a ValueError
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
