#!/usr/bin/env bash
# Data-parallel stage 1 on the CPU, in one run (keep the machine otherwise idle): language-model
# pretraining tokens/s with one process of T threads against T processes of one thread each
# (ulmfit --nproc, Gloo over loopback), and rank 0's all-reduce time per step. Same corpus,
# model, job batch and steps for every row; the first epoch's tokens/s of metrics.jsonl.
#
# Usage: bench/distributed.sh [--threads T] [--steps N] [--corpus FILE] [--out DIR]
#   --threads T  cores to spend (default 2): rows "1 x T", "T x 1" and, for reference, "1 x 1"
#   --steps N    optimizer steps timed per row (default 60)
#   --corpus F   pretraining text, one document per line, .gz allowed
#                (default ../shared/data/wikitext2/train.txt.gz)
#   --out DIR    distributed.csv and distributed.md (default docs/results/distributed-cpu)
# ULMFIT names the binary (default build/ulmfit).
set -euo pipefail
cd "$(dirname "$0")/.."
ULMFIT=${ULMFIT:-build/ulmfit}
threads=2 steps=60 corpus=../shared/data/wikitext2/train.txt.gz out=docs/results/distributed-cpu
while [[ $# -gt 0 ]]; do
  case $1 in
    --threads) threads=$2 ;;
    --steps) steps=$2 ;;
    --corpus) corpus=$2 ;;
    --out) out=$2 ;;
    *) echo "distributed: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
[[ -f $corpus ]] || { echo "distributed: no corpus at $corpus (--corpus FILE)" >&2; exit 1; }
work=${WORK:-runs/bench/distributed}
rm -rf "$work"
mkdir -p "$work" "$out"

# A mid-sized AWD-LSTM (the full 400/1152/3 model takes minutes a step on two cores), batch 32
# over the whole job, BPTT 70, a token validation set (20 documents).
cat >"$work/config.yaml" <<EOF
run:
  device: cpu
  checkpoint_minutes: 0
  log_every: 10
text:
  vocab_size: 8000
  cache_dir: $work/cache
model:
  emb_size: 200
  hidden_size: 512
  num_layers: 2
pretrain:
  data:
    train: $corpus
    max_documents: 20000
    valid_fraction: 0.001
  epochs: 1
  max_steps: $steps
  batch_size: 32
  bptt: 70
EOF
# The tokenizer and token caches once, outside the timed runs.
"$ULMFIT" --config "$work/config.yaml" --stage pretrain --set "run.output_dir=$work/prepare" \
  --set pretrain.max_steps=1 >"$work/prepare.log" 2>&1

csv=$out/distributed.csv
echo "processes,threads_per_process,steps,tokens_per_s,allreduce_ms_per_step,commit" >"$csv"
row() {  # PROCESSES THREADS: one timed run, one CSV row
  local processes=$1 per=$2 run=$work/run-$1x$2
  local -a launch=()
  [[ $processes -gt 1 ]] && launch=(--nproc "$processes")
  "$ULMFIT" --config "$work/config.yaml" --stage pretrain "${launch[@]}" \
    --set "run.output_dir=$run" --set "run.threads=$per" >"$run.log" 2>&1 ||
    { echo "distributed: $processes x $per failed (log $run.log)" >&2; exit 1; }
  local line
  line=$(grep '"event": "train_epoch"' "$run/metrics.jsonl" | head -1)
  local tps allreduce
  tps=$(sed -E 's/.*"tokens_per_s": ([0-9.e+-]+).*/\1/' <<<"$line")
  allreduce=$(grep -q allreduce_s_per_step <<<"$line" &&
              sed -E 's/.*"allreduce_s_per_step": ([0-9.e+-]+).*/\1/' <<<"$line" || echo 0)
  echo "$processes,$per,$steps,$(printf '%.0f' "$tps"),$(awk -v s="$allreduce" \
    'BEGIN { printf "%.1f", s * 1000 }'),$(git rev-parse --short HEAD)" >>"$csv"
}
row 1 1
row 1 "$threads"
row "$threads" 1

{
  echo "| processes × threads | tokens/s | vs 1 × $threads | all-reduce ms/step |"
  echo "|---|---|---|---|"
  base=$(awk -F, -v t="$threads" '$1 == 1 && $2 == t { print $4 }' "$csv")
  tail -n +2 "$csv" | while IFS=, read -r p t s tps ar commit; do
    echo "| $p × $t | $tps | $(awk -v a="$tps" -v b="$base" 'BEGIN { printf "%.2f", a / b }') | $ar |"
  done
  echo
  echo "Stage 1, $steps steps of a job batch of 32 × 70 tokens, model 200/512/2, vocabulary 8000,"
  echo "$(basename "$corpus"); commit $(git rev-parse --short HEAD); \`bench/distributed.sh --threads $threads --steps $steps\`."
} >"$out/distributed.md"
cat "$out/distributed.md"
