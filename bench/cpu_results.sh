#!/usr/bin/env bash
# The CPU results in README "Results" and docs/active_learning.md, one after another on this
# machine: IMDb at a CPU size (configs/imdb_small.yaml) with and without pretraining, then the
# active-learning simulations on TREC-6 and IMDb. Needs the small WikiText-2 LMs in
# runs/wikitext2_small and runs/wikitext2_small_bwd (configs/wikitext2_small.yaml; ~10 min an
# epoch here, seconds on a GPU: bench/gpu_trec.sh). Logs and wall times go to runs/cpu-results/.
# Usage: bench/cpu_results.sh [STEP ...]   (steps: imdb imdb-scratch trec-al imdb-al; default all)
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${ULMFIT:-build/ulmfit}
log=runs/cpu-results
mkdir -p "$log"
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(imdb imdb-scratch trec-al imdb-al)

timed() {  # NAME COMMAND...: runs it, logs it, appends its wall time to $log/times.txt
  local name=$1 t0 rc
  shift
  t0=$(date +%s)
  "$@" >"$log/$name.log" 2>&1
  rc=$?
  echo "$name: exit $rc, $(( $(date +%s) - t0 )) s: $*" | tee -a "$log/times.txt"
}

for step in "${steps[@]}"; do
  case $step in
    imdb) timed imdb "$bin" --config configs/imdb_small.yaml --resume ;;
    imdb-scratch)
      # No pretraining and no LM fine-tuning: the classifier from random weights (a tokenizer
      # trained on the task's text), the paper's "Clf from scratch" row of Table 6. Same small
      # architecture as the pretrained run: without a pretrained model the model section applies.
      timed imdb-scratch "$bin" --config configs/imdb_small.yaml --resume \
        --set finetune.pretrained=none --set finetune.epochs=0 --set finetune.frozen_epochs=0 \
        --set text.vocab_size=15000 --set run.output_dir=runs/imdb_small_scratch \
        --set model.emb_size=128 --set model.hidden_size=512 --set model.num_layers=2 ;;
    trec-al) timed trec-al "$bin" active-learn --config configs/trec_small.yaml ;;
    imdb-al)
      timed imdb-al "$bin" active-learn --config configs/imdb_small.yaml \
        --set classifier.phase_epochs=1,1,3 ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
