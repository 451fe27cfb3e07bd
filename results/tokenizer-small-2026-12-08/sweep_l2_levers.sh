#!/bin/bash
# After sweep_l2.sh: L2 with the levers that single out the ball on Breakout (same settings otherwise); one at a time.
cd /work/main
run() {  # name, overrides...
  local name=$1; shift
  /usr/bin/time -f "$name %e s" python pretrain.py --size tiny --replay runs/behaviour-dqn2 --games Breakout --stage tokenizer \
    --out runs/tok2/$name model.tokenizer.lpips_net=alex tokenizer.steps=2000 tokenizer.grid_every=500 \
    checkpoint.every=500 tokenizer.foreground_weight=100 tokenizer.pixel_loss=l2 "$@" > runs/tok2/$name.log 2>&1
}
run l2nolpips model.tokenizer.perceptual_weight=0
run l2motion1000 tokenizer.motion_weight=1000
