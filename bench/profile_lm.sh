#!/usr/bin/env bash
# Where an LM training step's CPU time goes: `perf record` (cpu-clock sampling, so it works
# without hardware counters and counts this process's CPU time, not the machine's) over
# `bench_lm`, then the samples grouped by what they were doing. Run by hand (docs/results.md).
#
# Usage: bench/profile_lm.sh [small|full] [bench_lm flags...]
#   e.g. bench/profile_lm.sh small --bs 32 --steps 4 --warmup 1
# Needs perf (Debian: linux-perf) and kernel.perf_event_paranoid <= 2. Debian's libtorch has no
# symbols, so its own ops show as one "libtorch" line; bench_lm's fwd/bwd/opt split says more.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-small}
shift || true
bin=${BENCH_LM:-build/bench_lm}
command -v perf >/dev/null || { echo "profile_lm: perf not found (apt-get install linux-perf)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
perf record -q -e cpu-clock -F 499 -o "$work/perf.data" -- "$bin" --device cpu --model "$model" "$@" \
  >"$work/bench.out" 2>&1 || { cat "$work/bench.out" >&2; exit 1; }
grep -E '^(torch|vocab|\| (model|small|full))' "$work/bench.out" || true
echo
perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
  awk '
    /^#/ || NF < 3 { next }
    {
      share = $1; sub(/%/, "", share); dso = $2; sym = $4
      if (sym ~ /^sgemm_kernel/) what = "matrix products: OpenBLAS sgemm kernels"
      else if (sym ~ /^sgemm_.*copy|^sgemm_beta/) what = "matrix products: OpenBLAS packing and scaling"
      else if (dso ~ /openblas/) what = "matrix products: OpenBLAS, other"
      else if (sym ~ /clear_page|folio_zero|zero_user/) what = "page zeroing (fresh memory from the kernel)"
      else if (sym ~ /sched_yield|finish_task_switch|pvm_irq|schedule|futex/ || dso ~ /gomp/) what = "thread waits and scheduling"
      else if (dso ~ /kernel/) what = "kernel, other (page faults, syscalls)"
      else if (dso ~ /sleef/) what = "exp/tanh/sigmoid (SLEEF)"
      else if (dso ~ /libtorch|libc10/) what = "libtorch ops (no symbols: softmax, dropout, pointwise, optimizer, ...)"
      else if (dso ~ /libc\.so|libm\.so/) what = "libc (malloc, memcpy, memset)"
      else if (dso ~ /ld-linux/) what = "dynamic loading (start-up)"
      else if (dso ~ /bench_lm/) what = "ulmfit code (LSTM step)"
      else what = "other"
      total[what] += share
    }
    END { for (w in total) printf "%6.1f%%  %s\n", total[w], w }' | sort -rn
