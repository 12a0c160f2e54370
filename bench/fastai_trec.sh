#!/usr/bin/env bash
# A fastai-layout model through the whole path on TREC-6, from one config: a small word-level
# language model pretrained here (text.tokenizer: words, a few hundred WikiText-2 steps), exported
# with export-fastai, then named as a .pth in finetune.pretrained, fine-tuned and classified.
# Prints the test error; docs/fastai.md reports it. No real WT103 file exists on this machine,
# so this shows the path works end to end, not the transfer a WikiText-103 model gives.
# Usage: bench/fastai_trec.sh [OUT_DIR] (default runs/fastai_trec); DATA=../shared/data
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/fastai_trec}
data=${DATA:-../shared/data}
bin=${ULMFIT:-build/ulmfit}
mkdir -p "$out"
cat > "$out/lm.yaml" <<YAML
run: {output_dir: $out/lm, seed: 1}
text: {tokenizer: words, vocab_size: 15000}
model: {emb_size: 128, hidden_size: 512, num_layers: 2}
pretrain:
  data: {train: $data/wikitext2/train.txt.gz, valid: $data/wikitext2/valid.txt.gz}
  epochs: 1
  max_steps: ${LM_STEPS:-300}
  batch_size: 32
  lr: 3.0e-3
YAML
"$bin" --config "$out/lm.yaml"
"$bin" export-fastai --model "$out/lm" --output "$out/fastai/lm.pth"
cat > "$out/trec.yaml" <<YAML
run: {output_dir: $out/trec, seed: 1}
task: {train: $data/trec/train.tsv.gz, test: $data/trec/test.tsv.gz}
finetune:
  pretrained: $out/fastai/lm.pth
  pretrained_vocab: $out/fastai/lm_itos.pkl
  epochs: 2
  batch_size: 32
classifier:
  batch_size: 32
  phase_groups: [1, 2, all]
  phase_epochs: [1, 1, 3]
  phase_lrs: [2e-2, 1e-2, 2e-2]
YAML
"$bin" --config "$out/trec.yaml"
cat "$out/trec/test_metrics.json"
