#!/usr/bin/env bash
# Sample-efficiency cells too slow for a 2-core CPU, on a lent GPU: several
# bench/sample_efficiency.sh drivers at once, sharing the GPU, each stopped cleanly within the
# call's budget. Rows that finished are kept; an unfinished run leaves no row.
#
# Usage: [BUDGET=540] bench/gpu_sample_efficiency.sh CONFIG JOB... [-- --set KEY=VALUE ...]
#   JOB is METHOD:SIZES:SEEDS[:PHASES], e.g. supervised:3000:1 or scratch:all:2:1,1,1
#   (PHASES sets classifier.phase_epochs). Each job is one driver, in runs/gpu-se/JOB.
# Set-up: bench/gpu_env.sh (BENCH_COMMIT names the commit: the tree travels without .git). The
# data and the pretrained LM are passed with --set (task.train=..., task.test=...).
# Brings back $OUT/gpu-se.tgz: every job's results.csv, logs and metrics.jsonl files.
set -uo pipefail
cd "$(dirname "$0")/.."
script_start=$(date +%s)
config=${1:?usage: bench/gpu_sample_efficiency.sh CONFIG JOB... [-- --set KEY=VALUE ...]}
shift
jobs=()
while [[ $# -gt 0 && $1 != -- ]]; do jobs+=("$1"); shift; done
[[ $# -gt 0 ]] && shift
sets=("$@")
WORK=${WORK:-runs/gpu-se}
RESULT=${OUT:-$WORK/results}
BUDGET=${BUDGET:-540}
mkdir -p "$WORK" "$RESULT"
exec > >(tee -a "$RESULT/gpu_sample_efficiency.log") 2>&1
GPU_TARGETS=${GPU_TARGETS:-ulmfit bench_data} OUT=$RESULT source bench/gpu_env.sh || exit 1
export ULMFIT=build-gpu/ulmfit BENCH_DATA=build-gpu/bench_data
left=$(( BUDGET - ($(date +%s) - script_start) - 30 ))
echo "jobs may take $left s"

pids=()
for job in "${jobs[@]}"; do
  IFS=: read -r method sizes seeds phases <<<"$job"
  name=$method-${sizes//,/_}-${seeds//,/_}
  phase_set=()
  [[ -n $phases ]] && phase_set=(--set "classifier.phase_epochs=$phases")
  (
    t=$(date +%s)
    timeout "$left" bench/sample_efficiency.sh "$config" --methods "$method" --sizes "$sizes" \
      --seeds "$seeds" --work "$WORK/$name" --out "$WORK/$name/out" "${sets[@]}" \
      "${phase_set[@]}" >"$WORK/$name.log" 2>&1
    echo "$name: exit $? after $(( $(date +%s) - t )) s"
  ) &
  pids+=($!)
done
wait "${pids[@]}"  # (a bare `wait` would also wait for the tee above)
nvidia-smi --query-gpu=name,memory.used --format=csv,noheader

# The same splits as the CPU rows? Their checksums, to compare with the CPU work dirs.
for d in "$WORK"/*/data; do md5sum "$d"/test.tsv "$d"/train-*.tsv 2>/dev/null | head -3; done
tail -n +2 -q "$WORK"/*/out/results.csv 2>/dev/null | cut -d, -f2-9
(cd "$WORK" && tar czf "$RESULT/gpu-se.tgz" --exclude='*.pt' --exclude='cache*' --exclude=data \
  --exclude='*.tsv' --exclude='*.model' --exclude=tokenizer ./*.log ./*/out ./*/logs ./*/runs 2>/dev/null)
ls -la "$RESULT"
