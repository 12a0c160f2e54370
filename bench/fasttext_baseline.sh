#!/usr/bin/env bash
# fastText baseline on a label<TAB>text task (Debian's `fasttext` CLI; apt-get install fasttext):
# supervised training with word bigrams, test error on the test file. Prints one JSON line.
# Usage: bench/fasttext_baseline.sh TRAIN.tsv[.gz] TEST.tsv[.gz] [EXTRA fasttext ARGS...]
# e.g.   bench/fasttext_baseline.sh ../shared/data/trec/train.tsv.gz ../shared/data/trec/test.tsv.gz
set -euo pipefail
command -v fasttext >/dev/null || { echo "fasttext_baseline: install fasttext (apt-get install fasttext)" >&2; exit 1; }
train=$1 test=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# fastText's format: __label__X then the text, lowercased (as ulmfit's rules do after marking case).
to_fasttext() { zcat -f "$1" | awk -F'\t' '{ print "__label__" $1 " " tolower($2) }'; }
to_fasttext "$train" > "$work/train.txt"
to_fasttext "$test" > "$work/test.txt"
t0=$(date +%s.%N)
fasttext supervised -input "$work/train.txt" -output "$work/model" -wordNgrams 2 -epoch 25 \
  -lr 0.5 -dim 100 -thread 2 -verbose 0 -seed 1 "$@" >/dev/null
t1=$(date +%s.%N)
result=$(fasttext test "$work/model.bin" "$work/test.txt")
n=$(awk '/^N/ {print $2}' <<<"$result")
p=$(awk '/^P@1/ {print $2}' <<<"$result")
awk -v n="$n" -v p="$p" -v s="$(echo "$t1 - $t0" | bc)" -v args="$*" \
  'BEGIN { printf "{\"count\": %d, \"error_rate\": %.4f, \"train_seconds\": %.1f, \"extra_args\": \"%s\"}\n", n, 1 - p, s, args }'
