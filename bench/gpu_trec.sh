#!/usr/bin/env bash
# TREC-6 on a GPU, as in README "Results": stage 1 on WikiText-2 (configs/trec.yaml, full
# 400/1152/3 model), then stages 2 and 3, forward and backward, their bidirectional ensemble,
# and the same recipe without pretraining (finetune.pretrained: none). Also pretrains the small
# 128/512/2 LM on WikiText-2 both ways (configs/wikitext2_small.yaml) for the CPU experiments,
# and times prediction (bench_predict). The runs share the GPU, in parallel.
# Set-up: bench/gpu_env.sh; data in build-debs/wikitext2/ and build-debs/trec/.
# Runs live in $WORK (default runs/gpu-trec; a rerun continues them); logs, metrics and the small
# LMs (lm.pt, tokenizer) are copied to $OUT. Each call stops its runs cleanly within $BUDGET s.
set -uo pipefail
cd "$(dirname "$0")/.."
script_start=$(date +%s)
WORK=${WORK:-runs/gpu-trec}     # the runs (kept between calls: a rerun continues them)
RESULT=${OUT:-$WORK/results}    # what to bring back: logs, metrics, the small LMs
BUDGET=${BUDGET:-540}           # seconds this call may take; runs stop cleanly before it
mkdir -p "$WORK" "$RESULT"
exec > >(tee -a "$RESULT/gpu_trec.log") 2>&1
OUT=$RESULT source bench/gpu_env.sh
wt2=build-debs/wikitext2
trec=build-debs/trec
start=$(date +%s)
left=$(( BUDGET - (start - script_start) - 60 ))
echo "runs may take $left s"

# ulmfit CONFIG NAME [--set ...]: one run into $OUT/NAME, in the background.
launch() {
  local config=$1 name=$2
  shift 2
  (
    t=$(date +%s)
    timeout "$left" build-gpu/ulmfit --config "$config" --set run.output_dir="$WORK/$name" \
      --set text.cache_dir="$WORK/cache-$name" --set run.log_every=500 --resume \
      --set pretrain.data.train="$wt2/train.txt.gz" --set pretrain.data.valid="$wt2/valid.txt.gz" \
      "$@" >>"$WORK/$name.log" 2>&1
    echo "$name: exit $? after $(( $(date +%s) - t )) s"
  ) &
  pids+=($!)
}
pids=()
trec_data=(--set task.train="$trec/train.tsv.gz" --set task.test="$trec/test.tsv.gz")
launch configs/trec.yaml trec-fwd "${trec_data[@]}"
launch configs/trec.yaml trec-bwd "${trec_data[@]}" --set model.backwards=true
launch configs/trec.yaml trec-scratch "${trec_data[@]}" --set finetune.pretrained=none
launch configs/wikitext2_small.yaml wt2-small-fwd
launch configs/wikitext2_small.yaml wt2-small-bwd --set model.backwards=true
wait "${pids[@]}"  # (a bare `wait` would also wait for the tee above, forever)
echo "all runs: $(( $(date +%s) - start )) s"

for name in trec-fwd trec-bwd trec-scratch; do
  echo "$name test: $(cat "$WORK/$name/test_metrics.json" 2>/dev/null)"
done
if [[ -f $WORK/trec-bwd/model/classifier.pt && -f $WORK/trec-fwd/model/classifier.pt ]]; then
  build-gpu/ulmfit evaluate --model "$WORK/trec-fwd" --model "$WORK/trec-bwd" \
    --data "$trec/test.tsv.gz" --output "$WORK/trec-bidir.json"
  timeout 60 build-gpu/bench_predict --device cuda --model full --docs 4096 --doc-len 300 --batch-size 64
  timeout 60 build-gpu/bench_predict --device cuda --model full --docs 4096 --doc-len 300 --batch-size 256 | tail -1
  timeout 60 build-gpu/bench_predict --model-dir "$WORK/trec-fwd/model" --data "$trec/test.tsv.gz" --device cuda | tail -2
fi

# Bring back the logs and metrics (one archive: the device tool returns a few files of a few MB),
# and the small LMs for the CPU runs in 5 MB pieces (cat lm.tgz.* | tar xzf -).
pack=$(mktemp -d)
for name in trec-fwd trec-bwd trec-scratch wt2-small-fwd wt2-small-bwd; do
  mkdir -p "$pack/$name"
  cp "$WORK/$name.log" "$pack/" 2>/dev/null
  for f in metrics.jsonl test_metrics.json confusion_matrix.csv resolved.yaml; do
    cp "$WORK/$name/$f" "$pack/$name/" 2>/dev/null
  done
done
cp "$WORK/trec-bidir.json" "$pack/" 2>/dev/null
tar czf "$RESULT/metrics.tgz" -C "$pack" .
lms=()
for name in wt2-small-fwd wt2-small-bwd; do
  [[ -f $WORK/$name/pretrain/lm.pt ]] && lms+=("$name/pretrain/lm.pt" "$name/tokenizer")
done
[[ ${#lms[@]} -gt 0 ]] && tar cf - -C "$WORK" "${lms[@]}" | gzip -1 | split -b 5000000 - "$RESULT/lm.tgz."
du -sh "$RESULT"
