"""Can the tiny tokenizer learn to draw a 2x2 ball? Synthetic frames: a background + one dot at a random place."""
import os
import numpy as np, torch, time, sys, dataclasses
from jowa.config import load_size
from jowa.tokenizer import Tokenizer
from jowa.training.objective_modules import TokenizerObjective
from jowa.diagnostics.pixels import tokenizer_measures
from jowa.training.frames import load_frame_pool
torch.manual_seed(int(os.environ.get("SEED", "0"))); torch.set_num_threads(2)
bg_real = load_frame_pool("runs/behaviour-dqn2", ["Breakout"], 1, 3000, 5).samples["Breakout"].background
import os
SIZE = int(os.environ.get("DOT", "2"))
def frames(n, rng, bg):
    f = np.repeat(bg[None], n, 0).copy()
    ys, xs = rng.integers(38, 68, n), rng.integers(8, 74, n)
    for i in range(n): f[i, ys[i]:ys[i]+SIZE, xs[i]:xs[i]+SIZE] = 110
    return f
steps = int(sys.argv[1]); which = sys.argv[2:]
from jowa.training.code_restart import restart_dead_codes, restart_weights
for name in which:
    bg = np.zeros((84, 84), np.uint8) if name.startswith("black") else bg_real
    cfg = dataclasses.replace(load_size("tiny").tokenizer, lpips_net="none", perceptual_weight=0.0)
    tok = Tokenizer(cfg)
    if "nogn" in name:
        import torch.nn as nn
        for mod_name, mod in list(tok.named_modules()):
            for child_name, child in list(mod.named_children()):
                if isinstance(child, nn.GroupNorm):
                    setattr(mod, child_name, nn.Identity())
    if "transposed" in name:
        import torch.nn as nn
        for level in tok.decoder.up:
            up = getattr(level, "upsample", None)
            if up is not None and up.scale == 7:
                c = up.conv.in_channels
                class T(nn.Module):
                    def __init__(self):
                        super().__init__(); self.scale = 7; self.up = nn.ConvTranspose2d(c, c, 7, 7); self.conv = nn.Conv2d(c, c, 3, 1, 1)
                    def forward(self, x): return self.conv(self.up(x))
                level.upsample = T()
    obj = TokenizerObjective(tok, torch.from_numpy(bg[None]), 100.0)
    opt = torch.optim.Adam(tok.parameters(), lr=float(os.environ.get("LR", "1e-3")))
    rng = np.random.default_rng(0); t0 = time.time()
    test = frames(256, np.random.default_rng(1), bg)
    for step in range(1, steps + 1):
        batch = torch.from_numpy(frames(8, rng, bg))
        if "noquant" in name:
            x = batch.float().div(255).unsqueeze(1)
            w = 1 + 100 * (batch.float() > 16).float().unsqueeze(1)
            enc = tok.encode(x)
            loss = (w * (tok.decode(enc.z) - x).abs()).sum() / w.sum()
        else:
            loss = obj(batch).loss
        if ("restart" in name) and step % 50 == 0:
            restart_dead_codes(tok, test[:128], torch.Generator().manual_seed(step),
                               restart_weights(test[:128], "pixels" if "pixels" in name else "latent", bg[None], 100.0))
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(tok.parameters(), 1.0); opt.step()
        if step % (steps // 4) == 0:
            tok.eval()
            with torch.no_grad():
                tt = torch.from_numpy(test)
                r = (tok.decode(tok.encode(tt.float().div(255).unsqueeze(1)).z) if "noquant" in name else tok.decode_tokens(tok.encode_tokens(tt))).clamp(0,1).mul(255).round().byte().squeeze(1).numpy()
            tok.train()
            m = tokenizer_measures(np.repeat(bg[None], 256, 0), test, r, bg)
            print(name, step, "kept %.3f of %d" % (m["small_objects_kept"], m["small_objects"]), "fg %.3f/%.3f" % (m["l1_foreground"], m["background_l1_foreground"]), "%.0fs" % (time.time() - t0), flush=True)
