"""Frames/s of tokenizing uint8 frames: `Tokenizer.encode_tokens` vs the straightforward path.

    python benchmarks/tokenizer_encode.py [--tokenizers official,tiny] [--batches 64,256] [--repeats 3]
                                          [--precisions fp32,bf16] [--device cpu|cuda]

Ours moves the uint8 frames to the device (4× less traffic than float32), converts them there and stops
at the token indices. The baseline converts to float on the host, moves the floats, and calls
`tokenizer.encode(frames).tokens`, which also builds the quantized latents z_q. Both run under
`torch.no_grad()` with the same randomly initialised weights, and must give identical tokens (checked on
every row). Frames are blocks of a few grey levels, so the tokens vary within and across frames.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from benchmarks.common import Table, device_name, pick_device, progress, rate, ratio, seconds_per_call  # noqa: E402
from jowa.config import load_size  # noqa: E402
from jowa.tokenizer import Tokenizer  # noqa: E402

TITLE = "Tokenizer encode"
SUMMARY = (
    "Frames/s of turning uint8 84×84 frames (on the host, as the replay reader gives them) into tokens with "
    "randomly initialised tokenizers: the official one (vocabulary 2048, used by every size but tiny) and tiny. "
    "Ours is `Tokenizer.encode_tokens`: the uint8 frames go to the device (4× less traffic than float32), are "
    "converted there, and the quantizer stops at the token indices. The baseline, measured in the same run, "
    "converts to float on the host and calls `tokenizer.encode(frames).tokens`, the full quantizer path that "
    "also builds z_q; both under no_grad. Every row checks that the two paths give identical tokens on the "
    "benchmark frames (blocks of a few grey levels). ratio = ours / straightforward."
)
TOKENIZERS = {"official": "150M", "tiny": "tiny"}  # the size preset that holds each tokenizer config
# Levels k whose k/255 on the host equals, bit for bit, CUDA's k·(1/255) (it divides by a scalar through the
# reciprocal; 48, 96 or 224 would differ in the last bit), so the check compares the two paths, not the rounding
# of one pixel conversion.
GREY_LEVELS = (0, 40, 90, 150, 190, 255)
BLOCK = 12  # 84 = 7 × 12: a 7×7 grid of flat blocks per frame


def structured_frames(count: int, seed: int = 0) -> torch.Tensor:
    """uint8 [count, 84, 84]: 12×12 blocks of a few grey levels (edges and flat areas, unlike uniform noise)."""
    g = torch.Generator().manual_seed(seed)
    levels = torch.tensor(GREY_LEVELS, dtype=torch.uint8)
    grid = levels[torch.randint(0, len(GREY_LEVELS), (count, 84 // BLOCK, 84 // BLOCK), generator=g)]
    return grid.repeat_interleave(BLOCK, 1).repeat_interleave(BLOCK, 2).contiguous()


def straightforward_tokens(tokenizer: Tokenizer, frames: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 84, 84] on the host → tokens [N, 36]: float on the host, then the full `encode`."""
    x = (frames.to(torch.float32) / 255.0).unsqueeze(1)  # [N, 1, 84, 84] in [0, 1]
    with torch.no_grad():
        return tokenizer.encode(x.to(tokenizer.embedding.weight.device)).tokens


def check_same_tokens(ours: torch.Tensor, theirs: torch.Tensor, label: str) -> None:
    """A speed-up that changes the tokens would be worthless; raise rather than `assert` (not stripped by -O)."""
    if ours.shape != theirs.shape or not torch.equal(ours.cpu(), theirs.cpu()):
        differ = (ours.cpu() != theirs.cpu()).sum().item() if ours.shape == theirs.shape else "shape"
        raise AssertionError(f"tokenizer encode ({label}): encode_tokens and encode(...).tokens differ ({differ})")


def measure_row(tokenizer: Tokenizer, frames: torch.Tensor, bf16: bool, repeats: int, label: str) -> tuple[float, float, int]:
    """(ours frames/s, straightforward frames/s, distinct tokens) for one batch of host uint8 frames."""
    device = tokenizer.embedding.weight.device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    with autocast:
        ours_tokens = tokenizer.encode_tokens(frames)
        check_same_tokens(ours_tokens, straightforward_tokens(tokenizer, frames), label)

    def ours() -> None:
        with autocast:
            tokenizer.encode_tokens(frames)

    def naive() -> None:
        with autocast:
            straightforward_tokens(tokenizer, frames)

    # The check above already ran both paths once: no further warm-up needed.
    ours_rate = len(frames) / seconds_per_call(ours, device, repeats, warmup=0)
    naive_rate = len(frames) / seconds_per_call(naive, device, repeats, warmup=0)
    return ours_rate, naive_rate, int(ours_tokens.unique().numel())


def measure(device: torch.device, names: list[str], batches: list[int], repeats: int, precisions: list[str]) -> Table:
    table = Table(f"{TITLE}, frames/s (uint8 84×84 frames on the host → tokens)",
                  ["tokenizer", "batch", "precision", "jowa frames/s", "straightforward frames/s", "ratio",
                   "distinct tokens"], notes="Tokens identical between the two paths on every row (checked).")
    for name in names:
        torch.manual_seed(0)
        tokenizer = Tokenizer(load_size(TOKENIZERS[name]).tokenizer).to(device).eval()
        for batch in batches:
            frames = structured_frames(batch)
            for precision in precisions:
                progress(f"  tokenizer encode: {name}, batch {batch}, {precision}")
                label = f"{name}, batch {batch}, {precision}"
                ours, naive, distinct = measure_row(tokenizer, frames, precision == "bf16", repeats, label)
                table.add(name, batch, "bf16 autocast" if precision == "bf16" else "fp32", rate(ours), rate(naive),
                          ratio(ours / naive), distinct)
    return table


def tables(device: torch.device, quick: bool = False) -> list[Table]:
    if quick:
        return [measure(device, ["tiny"], [4], repeats=1, precisions=["fp32"])]
    precisions = ["fp32", "bf16"] if device.type == "cuda" else ["fp32"]
    return [measure(device, ["official", "tiny"], [64, 256], repeats=3, precisions=precisions)]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizers", default="official,tiny", help=f"any of {', '.join(TOKENIZERS)}")
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precisions", default=None, help="fp32 and/or bf16 (autocast); default fp32, +bf16 on CUDA")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    unknown = set(args.tokenizers.split(",")) - set(TOKENIZERS)
    if unknown:
        parser.error(f"--tokenizers: unknown {', '.join(sorted(unknown))}; choose from {', '.join(TOKENIZERS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    device = pick_device(args.device)
    precisions = args.precisions.split(",") if args.precisions else (["fp32", "bf16"] if device.type == "cuda"
                                                                       else ["fp32"])
    print(f"{device_name(device)}, torch {torch.__version__}\n")
    table = measure(device, args.tokenizers.split(","), [int(b) for b in args.batches.split(",")], args.repeats,
                    precisions)
    print(table.to_markdown())


if __name__ == "__main__":
    main()
