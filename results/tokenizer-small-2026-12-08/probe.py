"""Probe: what keeps tiny's tokenizer nets from drawing a 2x2 dot? Latents decoded without the quantizer (the
nets' limit), black screen + one dot of grey 110 (benchmarks/tokenizer_dots.py's frames), batch 8, Adam, clip 1.
Variants (comma-separated names on the command line):
  loss=l1|l2       per-pixel error (the official loss is L1)          fg=W   foreground weight (weights 1 + W on the dot)
  lr=X             Adam learning rate (tiny: 1e-3)                      batch=N frames per step
  nogn             every GroupNorm replaced by the identity             up=transposed|shuffle  x7 nearest up-sampling -> ConvTranspose k7 s7 | PixelShuffle
  bg=breakout      the dot on Breakout's median frame (runs/behaviour-dqn2) instead of a black screen; fg weighs the
                   dot's pixels only
    python results/tokenizer-small-2026-12-08/probe.py 1000 loss=l1,fg=10 loss=l2,fg=10
"""
import dataclasses, sys, time
import numpy as np, torch
from torch import nn
sys.path.insert(0, ".")
from benchmarks.tokenizer_dots import dot_frames, dots_kept
from jowa.config import load_size
from jowa.tokenizer import Tokenizer

torch.set_num_threads(2)

def variant(spec: str) -> dict:
    opts = {"loss": "l1", "fg": 10.0, "lr": 1e-3, "batch": 8, "dot": 2, "seed": 0, "nogn": False, "up": "nearest",
            "ch": 16, "bg": "black"}
    for part in filter(None, spec.split(",")):
        key, _, value = part.partition("=")
        opts[key] = True if not value else type(opts[key])(value) if not isinstance(opts[key], bool) else True
    return opts

def replace_norms(module: nn.Module) -> None:
    """Every GroupNorm inside `module` becomes the identity."""
    for mod in list(module.modules()):
        for name, child in list(mod.named_children()):
            if isinstance(child, nn.GroupNorm):
                setattr(mod, name, nn.Identity())


def replace_upsampling(decoder: nn.Module, kind: str) -> None:
    """The decoder's nearest x7 up-sampling + conv becomes a ConvTranspose k7 s7 + conv (`transposed`) or a conv to
    49x the channels + PixelShuffle(7) (`shuffle`); `nearest` leaves it."""
    for level in decoder.up:
        up = getattr(level, "upsample", None)
        if up is None or up.scale != 7 or kind == "nearest":
            continue
        c = up.conv.in_channels
        up.conv = (nn.Sequential(nn.ConvTranspose2d(c, c, 7, 7), nn.Conv2d(c, c, 3, 1, 1)) if kind == "transposed"
                   else nn.Sequential(nn.Conv2d(c, 49 * c, 3, 1, 1), nn.PixelShuffle(7)))
        up.scale = 1  # interpolate by 1 is the identity; the new conv does the x7


def build(o: dict) -> Tokenizer:
    torch.manual_seed(o["seed"])
    cfg = dataclasses.replace(load_size("tiny").tokenizer, lpips_net="none", perceptual_weight=0.0, ch=o["ch"])
    tok = Tokenizer(cfg).train()
    if o["nogn"]:
        replace_norms(tok)
    replace_upsampling(tok.decoder, o["up"])
    return tok

def background(name: str) -> np.ndarray:
    if name == "black":
        return np.zeros((84, 84), np.uint8)
    from jowa.training.frames import load_frame_pool
    return load_frame_pool("runs/behaviour-dqn2", ["Breakout"], 1, 3000, 5).samples["Breakout"].background

def on(bg: np.ndarray, dots: np.ndarray) -> np.ndarray:
    return np.where(dots > 0, dots, bg[None])

def run(spec: str, steps: int, checks: int = 4) -> None:
    o = variant(spec)
    bg = background(o["bg"])
    tok = build(o)
    opt = torch.optim.Adam(tok.parameters(), lr=o["lr"])
    rng, test = np.random.default_rng(o["seed"]), dot_frames(256, o["dot"], np.random.default_rng(o["seed"] + 1000))
    started = time.perf_counter()
    for step in range(1, steps + 1):
        dots = dot_frames(o["batch"], o["dot"], rng)
        batch = torch.from_numpy(on(bg, dots))
        x = batch.float().div(255).unsqueeze(1)
        w = 1 + o["fg"] * torch.from_numpy(dots > 0).float().unsqueeze(1)
        diff = tok.decode(tok.encode(x).z) - x
        err = diff.abs() if o["loss"] == "l1" else diff.square()
        loss = (w * err).sum() / w.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(tok.parameters(), 1.0)
        opt.step()
        if step % (steps // checks) == 0:
            tok.eval()
            with torch.no_grad():
                xt = torch.from_numpy(on(bg, test)).float().div(255).unsqueeze(1)
                r = tok.decode(tok.encode(xt).z).clamp(0, 1).mul(255).round().byte().squeeze(1).numpy()
            tok.train()
            # a dot kept: closer to it than to the background, over its pixels (dots_kept with the background out)
            r_rel = np.abs(r.astype(np.int16) - bg[None]).astype(np.uint8)
            err_dot = np.abs(r.astype(np.float32) - test)[test > 0].mean() / 255
            err_bg = np.abs(r_rel.astype(np.float32))[test == 0].mean() / 255
            print(f"{spec or 'base'} step {step} kept {100 * dots_kept(test, r_rel):.0f} % dot_err {err_dot:.3f} "
                  f"bg_err {err_bg:.4f} {time.perf_counter() - started:.0f}s", flush=True)

if __name__ == "__main__":
    for spec in sys.argv[2:]:
        run(spec, int(sys.argv[1]))
