"""Breakout tokenizer runs measured on measure.py's 512 held pairs, decoded from codes and from the encoder's
latents without the quantizer: is the ball in the nets or lost at the codebook?
    python results/tokenizer-small-2026-12-08/latents.py NAME=DIR ..."""
import sys
from pathlib import Path
import numpy as np, torch
from jowa.diagnostics.pixels import tokenizer_measures
from jowa.tokenizer import Tokenizer
from jowa.training.frames import load_frame_pool
from jowa.training.tokenizer_stage import diagnostic_sample, reconstruct

pairs, backgrounds = diagnostic_sample(load_frame_pool("runs/behaviour-dqn2", ["Breakout"], 1, 40_000, 5, pairs=512).samples)
following = np.ascontiguousarray(pairs[:, 1])
print("| run | small moving objects kept, codes | latents | foreground error, codes | latents |\n|---|---:|---:|---:|---:|")
for arg in sys.argv[1:]:
    name, d = arg.split("=", 1)
    tok = Tokenizer.from_pretrained(Path(d) / "final" / "tokenizer").eval()
    with torch.no_grad():
        z = tok.encode(torch.from_numpy(following).float().div(255).unsqueeze(1)).z
        latent = (tok.decode(z).clamp(0, 1) * 255).round().byte().squeeze(1).numpy()
    codes = tokenizer_measures(pairs[:, 0], following, reconstruct(tok, following), backgrounds)
    cont = tokenizer_measures(pairs[:, 0], following, latent, backgrounds)
    print(f"| {name} | {100 * codes['small_objects_kept']:.1f} % | {100 * cont['small_objects_kept']:.1f} % | "
          f"{codes['l1_foreground']:.4f} | {cont['l1_foreground']:.4f} |", flush=True)
