# Shared by the experiment drivers in bench/ (sourced, not run): running one method on one
# split and appending its row to results.csv, with the seed, settings, commit, hardware and wall
# time that every number carries.
ULMFIT=${ULMFIT:-build/ulmfit}
BENCH_DATA=${BENCH_DATA:-build/bench_data}
for binary in "$ULMFIT" "$BENCH_DATA"; do
  [[ -x $binary ]] || { echo "$0: $binary is missing; build first (scripts/build.sh)" >&2; exit 1; }
done

RESULTS_HEADER=experiment,method,size,labels,seed,test_error,macro_f1,wall_s,commit,hardware,date,settings

experiment_header() {  # RESULTS: creates it with the header row unless it exists
  [[ -s $1 ]] || echo "$RESULTS_HEADER" >"$1"
  if [[ $(head -1 "$1") != "$RESULTS_HEADER" ]]; then
    echo "$0: $1 has another header; move it away or choose another --out" >&2
    exit 1
  fi
}

count_items() { local IFS=,; set -- $1; echo $#; }

experiment_has_row() {  # RESULTS METHOD SIZE SEED
  awk -F, -v m="$2" -v s="$3" -v r="$4" '$2 == m && $3 == s && $5 == r { found = 1 }
    END { exit !found }' "$1"
}

commit_id() {  # BENCH_COMMIT overrides it where the tree travels without .git (a GPU machine)
  [[ -n ${BENCH_COMMIT:-} ]] && { echo "$BENCH_COMMIT"; return; }
  local id
  id=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  git diff --quiet HEAD -- src bench configs 2>/dev/null || id="$id-dirty"
  echo "$id"
}

hardware_name() {  # CPU model and cores, and the GPU where one is visible (no commas)
  local cpu gpu
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
  echo "${cpu:-unknown CPU} x$(nproc)${gpu:+ + $gpu}" | tr ',' ' '
}

# The flags that make a run train on a prepared split (label<TAB>text, from `bench_data
# prepare`) and test on its test.tsv, with no validation split (the last epoch is kept).
split_flags() {  # TRAIN TEST [SEED]: sets the array `split`
  split=(--set "task.train=$1" --set "task.test=$2" --set task.valid= --set task.valid_fraction=0
         --set task.format=tsv --set task.header=no --set task.label_column=0
         --set task.text_columns=1 --set task.max_train_examples=0
         --set task.max_valid_examples=0 --set task.max_test_examples=0)
  if [[ -n ${3:-} ]]; then split+=(--set "run.seed=$3"); fi
}

json_field() {  # FILE KEY: a number from a one-line JSON object
  grep -o "\"$2\": [-0-9.eE+]*" "$1" | head -1 | awk '{ print $2 }'
}

# run_method METHOD RUN_DIR LOG TRAIN TEST SEED CONFIG [ULMFIT ARGS ...]
# Sets RUN_ERROR, RUN_F1 and RUN_WALL; on failure prints the log's end and exits.
run_method() {
  local method=$1 dir=$2 log=$3 train=$4 test=$5 seed=$6 config=$7 t0
  shift 7
  t0=$(date +%s.%N)
  if [[ $method == fasttext ]]; then
    mkdir -p "$dir"
    # shellcheck disable=SC2086  # FASTTEXT_ARGS: extra fastText flags, split on spaces
    if ! bench/fasttext_baseline.sh "$train" "$test" -seed "$seed" ${FASTTEXT_ARGS:-} \
        >"$dir/test_metrics.json" 2>"$log"; then
      echo "$0: fastText failed on $train (log $log):" >&2
      tail -3 "$log" >&2
      exit 1
    fi
    RUN_F1=""
  else
    if ! "$ULMFIT" --config "$config" "$@" --set "run.output_dir=$dir" --resume >"$log" 2>&1
    then
      echo "$0: $method failed on $train (log $log):" >&2
      tail -3 "$log" >&2
      exit 1
    fi
    RUN_F1=$(json_field "$dir/test_metrics.json" macro_f1)
  fi
  RUN_ERROR=$(json_field "$dir/test_metrics.json" error_rate)
  RUN_WALL=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
}

# experiment_append RESULTS EXPERIMENT METHOD SIZE LABELS SEED SETTINGS: the last run's row.
experiment_append() {
  local settings=${7//,/;}
  echo "$2,$3,$4,$5,$6,$RUN_ERROR,$RUN_F1,$RUN_WALL,$(commit_id),$(hardware_name),$(date -u +%FT%TZ),${settings//$'\n'/ }" >>"$1"
}
