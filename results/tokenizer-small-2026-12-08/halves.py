"""Probe: which half of tiny's tokenizer cannot handle a 2x2 dot? (black screen + one dot of grey 110, batch 8,
Adam lr 1e-3, clip 1; benchmarks/tokenizer_dots.py's frames)
  decoder  the decoder alone, fed a perfect latent: at the dot's patch, a one-hot of its row and one of its column
           inside the 14x14 patch (28 of the 64 channels), zeros elsewhere; weighted L1 (fg 10), dots kept.
           Variants after the step count, comma-separated (probe.py's): up=transposed|shuffle, nogn, fg=W, loss=l2,
           lr=X, batch=N; up=shuffle is a conv3x3 to 49x the channels + PixelShuffle(7) in place of nearest x7.
  encoder  the encoder alone with a 1x1 linear read-out: per patch, "holds the dot's top-left pixel?" and its row
           and column inside the patch; the accuracy of the patch and of the row/col on held frames
    python results/tokenizer-small-2026-12-08/halves.py decoder 1000
"""
import dataclasses, sys, time
import numpy as np, torch
from torch import nn
import torch.nn.functional as F
sys.path[:0] = [".", str(__import__("pathlib").Path(__file__).parent)]
from benchmarks.tokenizer_dots import LEVEL, dots_kept
from jowa.config import load_size
from jowa.tokenizer import Tokenizer

torch.set_num_threads(2)
PATCH, SIDE = 14, 6

def frames_and_positions(n: int, rng: np.random.Generator, dot: int = 2):
    f = np.zeros((n, 84, 84), np.uint8)
    ys, xs = rng.integers(38, 68, n), rng.integers(8, 74, n)
    for i in range(n):
        f[i, ys[i]:ys[i] + dot, xs[i]:xs[i] + dot] = LEVEL
    return f, ys, xs

def oracle_latent(ys, xs, channels: int) -> torch.Tensor:
    z = torch.zeros(len(ys), channels, SIDE, SIDE)
    for i, (y, x) in enumerate(zip(ys, xs)):
        z[i, y % PATCH, y // PATCH, x // PATCH] = 1.0
        z[i, PATCH + x % PATCH, y // PATCH, x // PATCH] = 1.0
    return z

def main(which: str, steps: int, spec: str = "") -> None:
    from probe import replace_norms, replace_upsampling, variant
    o = variant(spec)
    seed = o["seed"]
    torch.manual_seed(seed)
    cfg = dataclasses.replace(load_size("tiny").tokenizer, lpips_net="none", perceptual_weight=0.0)
    tok = Tokenizer(cfg).train()
    if o["nogn"]:
        replace_norms(tok.decoder)
    replace_upsampling(tok.decoder, o["up"])
    readout = nn.Conv2d(cfg.z_channels, 1 + 2 * PATCH, 1)
    params = list(tok.decoder.parameters() if which == "decoder" else [*tok.encoder.parameters(), *readout.parameters()])
    opt = torch.optim.Adam(params, lr=o["lr"])
    rng = np.random.default_rng(seed)
    test, tys, txs = frames_and_positions(256, np.random.default_rng(seed + 1000), o["dot"])
    started = time.perf_counter()
    for step in range(1, steps + 1):
        f, ys, xs = frames_and_positions(o["batch"], rng, o["dot"])
        x = torch.from_numpy(f).float().div(255).unsqueeze(1)
        if which == "decoder":
            y = tok.decoder(oracle_latent(ys, xs, cfg.z_channels))  # [-1, 1] space
            w = 1 + o["fg"] * (x > 0).float()
            diff = y - (2 * x - 1)
            loss = (w * (diff.abs() if o["loss"] == "l1" else diff.square())).sum() / w.sum()
        else:
            loss = encoder_loss(tok, readout, x, ys, xs)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % (steps // 4) == 0:
            with torch.no_grad():
                xt = torch.from_numpy(test).float().div(255).unsqueeze(1)
                if which == "decoder":
                    r = ((tok.decoder(oracle_latent(tys, txs, cfg.z_channels)) + 1) / 2).clamp(0, 1)
                    r = r.mul(255).round().byte().squeeze(1).numpy()
                    err = np.abs(r.astype(np.float32) - test)[test > 0].mean() / 255
                    report = f"kept {100 * dots_kept(test, r):.0f} % dot_err {err:.3f}"
                else:
                    _, patch_acc, pos_acc = encoder_loss(tok, readout, xt, tys, txs)
                    report = f"patch acc {100 * patch_acc:.0f} % row+col acc {100 * pos_acc:.0f} % (chance 3 % / 0.5 %)"
            print(f"{which} step {step} {report} {time.perf_counter() - started:.0f}s", flush=True)

def encoder_loss(tok, readout, x, ys, xs):
    out = readout(tok.encoder(2 * x - 1))  # [N, 29, 6, 6]
    n = len(ys)
    pr, pc = torch.as_tensor(ys // PATCH), torch.as_tensor(xs // PATCH)
    patch_logits = out[:, 0].reshape(n, -1)
    patch_target = pr * SIDE + pc
    at = out[torch.arange(n), 1:, pr, pc]  # [N, 28] at the dot's patch
    row, col = torch.as_tensor(ys % PATCH), torch.as_tensor(xs % PATCH)
    loss = F.cross_entropy(patch_logits, patch_target) + F.cross_entropy(at[:, :PATCH], row) \
        + F.cross_entropy(at[:, PATCH:], col)
    patch_acc = (patch_logits.argmax(1) == patch_target).float().mean().item()
    pos_acc = ((at[:, :PATCH].argmax(1) == row) & (at[:, PATCH:].argmax(1) == col)).float().mean().item()
    return loss, patch_acc, pos_acc

if __name__ == "__main__":
    for spec in sys.argv[3:] or [""]:
        print("#", spec or "base", flush=True)
        main(sys.argv[1], int(sys.argv[2]), spec)
