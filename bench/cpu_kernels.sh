#!/usr/bin/env bash
# LM training speed on the CPU against the same run's 2048^2 matmul, per OpenBLAS kernel set and
# with the decoder's loss fused or not, then with everything left to ulmfit (the kernel set it
# measures and caches itself, here from an empty cache), and last with run.cpu_bf16's bfloat16
# products where the CPU has AVX512_BF16 or AMX. Run by hand on a quiet machine
# (docs/results.md, "CPU kernels").
#
# Usage: bench/cpu_kernels.sh [OUT_DIR] [bench_lm flags...]   (default: --bs 32 --steps 5 --warmup 2)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/cpu_kernels}
shift || true
flags=("$@")
[[ ${#flags[@]} -gt 0 ]] || flags=(--bs 32 --steps 5 --warmup 2)
bin=${BENCH_LM:-build/bench_lm}
mkdir -p "$out"
cores=$(grep -o -w -E 'avx512f|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')
candidates=(Haswell)
[[ $cores == *avx512f* ]] && candidates+=(SkylakeX)
[[ $cores == *avx512_bf16* ]] && candidates+=(Cooperlake)
{
  echo "# bench/cpu_kernels.sh ${flags[*]} ($(date -u +%F), commit $(git rev-parse --short HEAD))"
  echo
  for core in "${candidates[@]}"; do
    for fused in 0 1; do
      echo "## OPENBLAS_CORETYPE=$core, --fused-loss $fused"
      OPENBLAS_CORETYPE=$core "$bin" --device cpu --model both --layer 0 --fused-loss $fused \
        "${flags[@]}" 2>&1 | grep -E '^(torch|\| (model|small|full))'
      echo
    done
  done
  echo "## left to ulmfit (OPENBLAS_CORETYPE unset, empty kernel cache), --fused-loss 1"
  cache=$(mktemp -d)
  env -u OPENBLAS_CORETYPE ULMFIT_CACHE_DIR="$cache" "$bin" --device cpu --model both --layer 0 \
    "${flags[@]}" 2>&1 | grep -E '^(torch|\| (model|small|full))'
  echo
  echo "kernel cache: $(cut -f2- "$cache/openblas_core.tsv" 2>/dev/null)"
  echo
  if [[ $cores == *avx512_bf16* ]] || grep -q -w amx_bf16 /proc/cpuinfo; then
    echo "## left to ulmfit, --cpu-bf16 1 (run.cpu_bf16: the products in bfloat16)"
    env -u OPENBLAS_CORETYPE ULMFIT_CACHE_DIR="$cache" "$bin" --device cpu --model both --layer 0 \
      --cpu-bf16 1 "${flags[@]}" 2>&1 | grep -E '^\| (model|small|full)'
    echo
  fi
  rm -rf "$cache"
} | tee "$out/cpu_kernels.md"
