#!/usr/bin/env bash
# TREC-6 on a GPU, as in README "Results": stage 1 on WikiText-2 (configs/trec.yaml, full
# 400/1152/3 model), then stages 2 and 3, forward and backward, their bidirectional ensemble,
# and the same recipe without pretraining (finetune.pretrained: none). Also pretrains the small
# 128/512/2 LM on WikiText-2 both ways (configs/wikitext2_small.yaml) for the CPU experiments,
# and times prediction (bench_predict). The runs share the GPU, in parallel.
# Set-up: bench/gpu_env.sh; data in build-debs/wikitext2/ and build-debs/trec/.
# Results go to $OUT (default runs/gpu-trec): logs, metrics, and the small LMs (lm.pt, tokenizer).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-trec}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_trec.log") 2>&1
source bench/gpu_env.sh
wt2=build-debs/wikitext2
trec=build-debs/trec
start=$(date +%s)

# ulmfit CONFIG NAME [--set ...]: one run into $OUT/NAME, in the background.
launch() {
  local config=$1 name=$2
  shift 2
  (
    t=$(date +%s)
    build-gpu/ulmfit --config "$config" --set run.output_dir="$OUT/$name" \
      --set text.cache_dir="$OUT/cache-$name" --set run.log_every=500 \
      --set pretrain.data.train="$wt2/train.txt.gz" --set pretrain.data.valid="$wt2/valid.txt.gz" \
      "$@" >"$OUT/$name.log" 2>&1
    echo "$name: exit $? after $(( $(date +%s) - t )) s"
  ) &
}
trec_data=(--set task.train="$trec/train.tsv.gz" --set task.test="$trec/test.tsv.gz")
launch configs/trec.yaml trec-fwd "${trec_data[@]}"
launch configs/trec.yaml trec-bwd "${trec_data[@]}" --set model.backwards=true
launch configs/trec.yaml trec-scratch "${trec_data[@]}" --set finetune.pretrained=none
launch configs/wikitext2_small.yaml wt2-small-fwd
launch configs/wikitext2_small.yaml wt2-small-bwd --set model.backwards=true
wait
echo "all runs: $(( $(date +%s) - start )) s"

for name in trec-fwd trec-bwd trec-scratch; do
  echo "$name test: $(cat "$OUT/$name/test_metrics.json" 2>/dev/null)"
done
build-gpu/ulmfit evaluate --model "$OUT/trec-fwd" --model "$OUT/trec-bwd" \
  --data "$trec/test.tsv.gz" --output "$OUT/trec-bidir.json"
timeout 120 build-gpu/bench_predict --device cuda --model full --docs 4096 --doc-len 300 --batch-size 64
timeout 120 build-gpu/bench_predict --device cuda --model full --docs 4096 --doc-len 300 --batch-size 256 | tail -1
timeout 60 build-gpu/bench_predict --model-dir "$OUT/trec-fwd" --data "$trec/test.tsv.gz" --device cuda | tail -2

# Keep what comes back small: metrics and logs, and the small LMs for the CPU runs.
for name in trec-fwd trec-bwd trec-scratch wt2-small-fwd wt2-small-bwd; do
  rm -rf "$OUT/cache-$name" "$OUT/$name"/*/checkpoint* "$OUT/$name"/checkpoint*
  find "$OUT/$name" -name '*.pt' ! -path '*wt2-small*/pretrain/lm.pt' -delete 2>/dev/null
done
du -sh "$OUT"
