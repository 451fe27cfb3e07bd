#!/bin/bash
# Breakout-only tokenizer, 1000 steps, the study's settings: foreground weight 10 (tiny's) / 100, and 100 with
# batch 32; one at a time.
cd /work/main
run() {  # name, overrides...
  local name=$1; shift
  python pretrain.py --size tiny --replay runs/behaviour-dqn --games Breakout --stage tokenizer --out runs/tok/$name \
    model.tokenizer.lpips_net=alex tokenizer.steps=1000 tokenizer.grid_every=500 checkpoint.every=500 "$@" \
    > runs/tok/$name.log 2>&1
}
run fw10 tokenizer.foreground_weight=10
run fw100 tokenizer.foreground_weight=100
run fw100_b32 tokenizer.foreground_weight=100 tokenizer.batch_size=32
