"""python runs/drift/compare.py A B: the first logged step where two fine-tunings' losses differ."""
import json, sys
def load(d):
    return {r["step"]: r for r in map(json.loads, open(f"runs/drift/{d}/train/metrics.jsonl")) if "loss/total" in r}
a, b = load(sys.argv[1]), load(sys.argv[2])
first = None
for step in sorted(set(a) & set(b)):
    diff = {k: (a[step][k], b[step][k]) for k in a[step] if k.startswith("loss/") and a[step][k] != b[step].get(k)}
    if diff and first is None:
        first = step; print(sys.argv[1:], "first differing step", step, list(diff.items())[:4])
if first is None: print(sys.argv[1:], "identical over", len(a), "steps")
else: print("  at the end:", max(a), a[max(a)]["loss/total"], b[max(b)]["loss/total"])
