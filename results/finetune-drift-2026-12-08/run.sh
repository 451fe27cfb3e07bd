#!/bin/bash
# Two identical 40-step MsPacman fine-tunings from the study's tiny model, per variant; compare per-step losses.
cd /work/main
ft() {  # name, overrides...
  local name=$1; shift
  rm -rf runs/drift/$name
  python finetune.py --run runs/study7/models/tiny --game MsPacman --replay runs/behaviour-dqn2 --out runs/drift/$name \
    --transitions 5000 --from last-fraction=0.2 --pretrained-games Berzerk,DemonAttack,Assault,Breakout \
    steps=40 logging.every=1 tokenizer.train=true tokenizer.lr=1e-3 tokenizer.frames=16 evaluation.every=0 \
    evaluation.final.episodes=0 loss.bootstrap=data loss.cql_weight=1.0 target_update_every=10 \
    loss.critic_history=random checkpoint.every=40 "$@" > runs/drift/$name.log 2>&1
}
for v in "$@"; do
  case $v in
    base) ft base_a; ft base_b ;;
    fp32) ft fp32_a precision=fp32; ft fp32_b precision=fp32 ;;
    notok) ft notok_a tokenizer.train=false; ft notok_b tokenizer.train=false ;;
  esac
done
