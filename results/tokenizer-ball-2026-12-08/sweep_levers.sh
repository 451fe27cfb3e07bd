#!/bin/bash
# Levers on the Breakout ball (small_objects_kept), Breakout alone, the study's settings otherwise; one at a time.
cd /work/main
run() {  # name, steps, overrides...
  local name=$1 steps=$2; shift 2
  /usr/bin/time -f "$name %e s" python pretrain.py --size tiny --replay runs/behaviour-dqn2 --games Breakout --stage tokenizer \
    --out runs/tok2/$name model.tokenizer.lpips_net=alex tokenizer.steps=$steps tokenizer.grid_every=500 \
    checkpoint.every=500 tokenizer.foreground_weight=100 "$@" > runs/tok2/$name.log 2>&1
}
run nolpips 2000 model.tokenizer.perceptual_weight=0
run ch32 2000 model.tokenizer.ch=32
run steps6000 6000
