#!/usr/bin/env bash
# Builds ulmfit against the CUDA libtorch of a pip `torch` and runs the GPU checks: the LM
# benchmark and WikiText-2 pretraining with configs/wikitext2.yaml. Set-up: see bench/gpu_env.sh;
# WikiText-2 goes in build-debs/wikitext2/.
# Results go to $OUT (default: runs/gpu).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_run.log") 2>&1
source bench/gpu_env.sh
[[ -n "${SKIP_BENCH:-}" ]] || timeout 120 build-gpu/bench_lm --device cuda --model both --steps 20 --warmup 3 2>&1 | tail -8
data=${WT2:-build-debs/wikitext2}
timeout "${TRAIN_SECONDS:-300}" build-gpu/ulmfit --config configs/wikitext2.yaml \
  --set run.output_dir="$OUT/wikitext2" --set text.cache_dir="$OUT/cache" \
  --set pretrain.data.train="$data/train.txt.gz" --set pretrain.data.valid="$data/valid.txt.gz" \
  --set run.log_every=200 "${@}" 2>&1 | grep -v "^  " | grep -vE "^(run|text|model|pretrain|preset):"
echo "exit: $?"
cp "$OUT/wikitext2/metrics.jsonl" "$OUT/metrics.jsonl" 2>/dev/null || true
