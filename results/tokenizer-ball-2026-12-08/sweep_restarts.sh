#!/bin/bash
# Breakout-only tiny tokenizer, 2000 steps, the study's settings (foreground 100, restarts every 50):
# restarts by latent distance (the study's) against restarts by patch pixel error; one at a time.
cd /work/main
run() {  # name, overrides...
  local name=$1; shift
  /usr/bin/time -f "$name %e s" python pretrain.py --size tiny --replay runs/behaviour-dqn2 --games Breakout --stage tokenizer \
    --out runs/tok2/$name model.tokenizer.lpips_net=alex tokenizer.steps=2000 tokenizer.grid_every=500 \
    checkpoint.every=500 tokenizer.foreground_weight=100 "$@" > runs/tok2/$name.log 2>&1
}
run latent tokenizer.code_restart_by=latent
run pixels tokenizer.code_restart_by=pixels
