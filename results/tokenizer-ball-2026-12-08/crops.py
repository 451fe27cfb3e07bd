"""Ten small moving objects of Breakout (512 held pairs, seed 5), 24 x 24 crops x 6: the original on top, then
each tokenizer directory given, in order: python crops.py OUT.png DIR..."""
import numpy as np, torch, sys
from PIL import Image
from scipy import ndimage
from jowa.tokenizer import Tokenizer
from jowa.training.frames import load_frame_pool
from jowa.diagnostics.pixels import differs
s = load_frame_pool("runs/behaviour-dqn2", ["Breakout"], 1, 40_000, 5, pairs=512).samples["Breakout"]
f0, f1, bg = s.pairs[:,0], s.pairs[:,1], s.background
fg = differs(f1, bg[None], 16); ch = differs(f1, f0, 16)
crops = []
for i in range(len(f1)):
    lab, n = ndimage.label(fg[i], structure=np.ones((3,3)))
    for k in range(1, n+1):
        m = lab == k
        if m.sum() <= 16 and (ch[i] & m).any():
            ys, xs = np.nonzero(m); crops.append((i, int(ys.mean()), int(xs.mean())))
crops = crops[::len(crops)//10][:10]
rows = []
for d in sys.argv[2:]:
    tok = Tokenizer.from_pretrained(d).eval()
    with torch.no_grad():
        idx = [c[0] for c in crops]
        rec = tok.decode_tokens(tok.encode_tokens(torch.from_numpy(f1[idx]))).clamp(0,1).mul(255).round().byte().squeeze(1).numpy()
    rows.append(rec)
def crop(img, y, x):
    p = np.pad(img, 12); return p[y:y+24, x:x+24]
tiles = []
for r, src in enumerate([f1[[c[0] for c in crops]]] + rows):
    tiles.append(np.concatenate([crop(src[j], y, x) for j, (_, y, x) in enumerate(crops)], axis=1))
img = np.concatenate(tiles, axis=0)
Image.fromarray(img).resize((img.shape[1]*6, img.shape[0]*6), Image.NEAREST).save(sys.argv[1])
print(len(crops), [c for c in crops])
