"""Parameter counts of a size preset, broken down as the official code reports them.

    python -m jowa.model.summary --size 150M
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from jowa.config import SIZES, ModelSize, load_size
from jowa.model.world_model import WorldActionModel


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def world_model_breakdown(model: WorldActionModel) -> dict[str, int]:
    """Component → parameter count; `total` includes the target Q head (the official convention)."""
    parts = {
        "transformer blocks + ln_f": count(model.transformer),
        "token embeddings": count(model.embedder),
        "position embedding": count(model.pos_emb),
        "task embeddings": count(model.task_emb),
        "observation head": count(model.head_observations),
        "reward head": count(model.head_rewards),
        "end head": count(model.head_ends),
        "Q head": count(model.head_q),
        "target Q head": count(model.head_q_target),
    }
    parts["total (incl. target Q head)"] = count(model)
    parts["trainable (without target)"] = parts["total (incl. target Q head)"] - parts["target Q head"]
    return parts


def build_on_meta(size: ModelSize) -> tuple[WorldActionModel, nn.Module]:
    """Both models without allocating memory: shapes only, enough to count parameters."""
    from jowa.tokenizer import Tokenizer

    with torch.device("meta"):
        return WorldActionModel(size.world_model), Tokenizer(size.tokenizer)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=SIZES, default="40M")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    size = load_size(args.size)
    model, tokenizer = build_on_meta(size)
    rows = world_model_breakdown(model)
    rows["tokenizer (without LPIPS)"] = count(tokenizer)
    width = max(map(len, rows))
    print(f"JOWA {size.name}")
    for name, value in rows.items():
        print(f"  {name:<{width}}  {value:>13,}")


if __name__ == "__main__":
    main()
