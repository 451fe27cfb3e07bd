#!/bin/bash
# Breakout-only tiny tokenizer, 2000 steps, the study's settings (LPIPS alex, foreground 100, restarts every 50),
# the per-pixel error squared (tokenizer.pixel_loss=l2) against the L1 run of results/tokenizer-ball-2026-12-08
# (runs/tok2/latent); one at a time.
cd /work/main
run() {  # name, overrides...
  local name=$1; shift
  /usr/bin/time -f "$name %e s" python pretrain.py --size tiny --replay runs/behaviour-dqn2 --games Breakout --stage tokenizer \
    --out runs/tok2/$name model.tokenizer.lpips_net=alex tokenizer.steps=2000 tokenizer.grid_every=500 \
    checkpoint.every=500 tokenizer.foreground_weight=100 "$@" > runs/tok2/$name.log 2>&1
}
run l2 tokenizer.pixel_loss=l2
run l2fg1000 tokenizer.pixel_loss=l2 tokenizer.foreground_weight=1000
