"""Tokenizer runs on 512 consecutive Breakout pairs (seed 5, not the training hook's sample):
python runs/tok2/measure.py NAME=DIR ... > table.md"""
import json, re, sys
from pathlib import Path
from jowa.tokenizer import Tokenizer
from jowa.training.frames import load_frame_pool
from jowa.training.tokenizer_stage import diagnostic_sample, measure_tokenizer

samples = load_frame_pool("runs/behaviour-dqn2", ["Breakout"], 1, 40_000, 5, pairs=512).samples
pairs, backgrounds = diagnostic_sample(samples)
print("| setting | foreground: model / background | changed: model / background | small moving objects kept | codes used | train s |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for arg in sys.argv[1:]:
    name, d = arg.split("=", 1)
    m = measure_tokenizer(Tokenizer.from_pretrained(Path(d) / "final" / "tokenizer").eval(), pairs, backgrounds)
    log = Path(d).with_suffix(".log").read_text(errors="replace")
    seconds = re.findall(r"finished at step \d+ in ([\d.]+)s", log)
    print(f"| {name} | {m['l1_foreground']:.4f} / {m['background_l1_foreground']:.4f} | {m['l1_changed']:.4f} / "
          f"{m['background_l1_changed']:.4f} | {100 * m['small_objects_kept']:.1f} % of {m['small_objects']:.0f} | "
          f"{m['codes_used']:.0f} | {seconds[-1] if seconds else '–'} |")
    json.dump({"name": name, **m}, open(Path(d) / "measures_512.json", "w"))
