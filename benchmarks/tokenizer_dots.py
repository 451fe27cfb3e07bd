"""Can a tokenizer learn to draw a ball? Synthetic frames: a black screen with one square dot of grey 110 (about
Breakout's ball at 84 × 84) at a random place; the tokenizer of a size trains on them from scratch with its
training config's learning rate and clipping (batch 8), its foreground weight (10, tiny's, where the config has
none: the official loss has no weighting) and, for the quantized rows, dead-code restarts every 50 steps, and is
judged on 256 held frames: a dot is kept when the reconstruction is closer to it than to the black screen.
The continuous rows decode the encoder's latents without the quantizer (same nets, same loss): they tell the
nets' limit from the codebook's. No replay, no LPIPS (the perceptual term made no difference on Breakout).
--pixel-loss l2 squares the per-pixel error (`tokenizer.pixel_loss`, ours; the official loss is L1).

    python benchmarks/tokenizer_dots.py --size tiny --steps 500 --dots 2,4,8
    python benchmarks/tokenizer_dots.py --size tiny --steps 2000 --dots 2 --pixel-loss l2 --foreground 100
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.common import cpu_label  # noqa: E402

LEVEL = 110  # grey level of the dot
TEST_FRAMES = 256
RESTART_EVERY = 50


def dot_frames(count: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [count, 84, 84]: black, one size × size dot of LEVEL where Breakout's ball flies (rows 38–68)."""
    frames = np.zeros((count, 84, 84), np.uint8)
    ys, xs = rng.integers(38, 68, count), rng.integers(8, 74, count)
    for i in range(count):
        frames[i, ys[i]:ys[i] + size, xs[i]:xs[i] + size] = LEVEL
    return frames


def reconstruct(tokenizer, frames: np.ndarray, quantized: bool) -> np.ndarray:
    with torch.no_grad():
        x = torch.from_numpy(frames).float().div(255).unsqueeze(1)
        encoding = tokenizer.encode(x)
        y = tokenizer.decode(encoding.z_quantized if quantized else encoding.z)
    return y.clamp(0, 1).mul(255).round().byte().squeeze(1).numpy()


def dots_kept(frames: np.ndarray, reconstructions: np.ndarray) -> float:
    """Share of frames whose dot the reconstruction is closer to than to the black screen (summed over its pixels)."""
    dot = frames > 0
    to_frame = (np.abs(reconstructions.astype(np.float32) - frames) * dot).sum(axis=(1, 2))
    to_black = (reconstructions.astype(np.float32) * dot).sum(axis=(1, 2))
    return float((to_frame < to_black).mean())


def train(size_name: str, dot: int, quantized: bool, steps: int, seed: int, checkpoints: int,
          batch_size: int, pixel_loss: str = "l1", foreground: float | None = None) -> list[dict]:
    from jowa.config import load_size
    from jowa.tokenizer import Tokenizer
    from jowa.training.code_restart import restart_dead_codes
    from jowa.training.config import load_training
    from jowa.training.objective_modules import TokenizerObjective, foreground_weights

    settings = load_training("tiny" if size_name == "tiny" else "official").tokenizer
    config = dataclasses.replace(load_size(size_name).tokenizer, lpips_net="none", perceptual_weight=0.0)
    torch.manual_seed(seed)
    tokenizer = Tokenizer(config).train()
    black = torch.zeros(1, 84, 84, dtype=torch.uint8)
    # the official config has no foreground weight; tiny's 10 keeps rows comparable
    weight = foreground if foreground is not None else settings.foreground_weight or 10.0
    objective = TokenizerObjective(tokenizer, black, weight, pixel_loss=pixel_loss)
    optimizer = torch.optim.Adam(tokenizer.parameters(), lr=settings.lr)
    rng, test = np.random.default_rng(seed), dot_frames(TEST_FRAMES, dot, np.random.default_rng(seed + 1000))
    rows, started = [], time.perf_counter()
    for step in range(1, steps + 1):
        batch = torch.from_numpy(dot_frames(batch_size, dot, rng))
        if quantized:
            loss = objective(batch).loss
        else:  # the same weighted error, decoded from the latents themselves
            x = batch.float().div(255).unsqueeze(1)
            weights = foreground_weights(batch, black, weight)
            difference = tokenizer.decode(tokenizer.encode(x).z) - x
            error = difference.abs() if pixel_loss == "l1" else difference.square()
            loss = (weights * error).sum() / weights.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tokenizer.parameters(), settings.grad_clip)
        optimizer.step()
        if quantized and step % RESTART_EVERY == 0:
            restart_dead_codes(tokenizer, test[:128], torch.Generator().manual_seed(step))
        if step % max(1, steps // checkpoints) == 0 or step == steps:
            tokenizer.eval()
            rebuilt = reconstruct(tokenizer, test, quantized)
            tokenizer.train()
            error = np.abs(rebuilt.astype(np.float32) - test)[test > 0].mean() / 255
            rows.append({"size": size_name, "dot": dot, "quantized": quantized, "pixel_loss": pixel_loss,
                         "foreground": weight, "step": step, "seed": seed,
                         "kept": dots_kept(test, rebuilt), "dot_error": float(error), "baseline_error": LEVEL / 255,
                         "seconds": round(time.perf_counter() - started, 1)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--dots", default="2,4,8", help="dot sides in pixels, comma-separated")
    parser.add_argument("--seeds", default="0", help="comma-separated")
    parser.add_argument("--checkpoints", type=int, default=4, help="evaluations per run")
    parser.add_argument("--batch", type=int, default=8, help="frames per step (tiny's; the official 2048 is no CPU's)")
    parser.add_argument("--pixel-loss", choices=("l1", "l2"), default="l1", help="l1 is the official loss")
    parser.add_argument("--foreground", type=float, help="foreground weight (default: the config's, else 10)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_label()}, {args.threads} torch threads; torch {torch.__version__}", flush=True)
    rows = [row for dot in map(int, args.dots.split(",")) for quantized in (True, False)
            for seed in map(int, args.seeds.split(","))
            for row in train(args.size, dot, quantized, args.steps, seed, args.checkpoints, args.batch,
                             args.pixel_loss, args.foreground)]
    print(f"\n| tokenizer | loss | fg weight | dot (px) | decoded from | seed | step | dots kept | error on the dot "
          f"(black screen: {LEVEL / 255:.3f}) | train s |\n|---|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['size']} | {r['pixel_loss']} | {r['foreground']:g} | {r['dot']}×{r['dot']} | "
              f"{'codes' if r['quantized'] else 'latents'} | {r['seed']} | "
              f"{r['step']} | {100 * r['kept']:.0f} % | {r['dot_error']:.3f} | {r['seconds']} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
