#!/usr/bin/env bash
# Builds ulmfit against the CUDA libtorch of a pip `torch` and runs the GPU checks: the LM
# benchmark and WikiText-2 pretraining with configs/wikitext2.yaml. For a lent GPU machine
# without Debian's -dev packages: put their .deb files in build-debs/ (apt-get download
# libabsl-dev libabsl20220623 libyaml-cpp-dev libyaml-cpp0.7 libfmt-dev libfmt9
# libsentencepiece-dev libsentencepiece0 zlib1g-dev) and WikiText-2 in build-debs/wikitext2/.
# Results go to $OUT (default: runs/gpu).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_run.log") 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
prefix=$PWD/build-debs/prefix
if ls build-debs/*.deb >/dev/null 2>&1; then
  mkdir -p "$prefix"
  for d in build-debs/*.deb; do dpkg-deb -x "$d" "$prefix"; done
  sed -i "s|^prefix=/usr|prefix=$prefix/usr|" "$prefix"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc
  export PKG_CONFIG_PATH=$prefix/usr/lib/x86_64-linux-gnu/pkgconfig
  export LD_LIBRARY_PATH=$prefix/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
fi
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI)'
t0=$(date +%s)
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DULMFIT_BUILD_TESTS=OFF \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$prefix/usr" -DCMAKE_CUDA_ARCHITECTURES=90 >"$OUT/cmake.log" 2>&1 \
  || { tail -30 "$OUT/cmake.log"; exit 1; }
cmake --build build-gpu -j"$(nproc)" >"$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -40; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
[[ -n "${SKIP_BENCH:-}" ]] || timeout 120 build-gpu/bench_lm --device cuda --model both --steps 20 --warmup 3 2>&1 | tail -8
data=${WT2:-build-debs/wikitext2}
timeout "${TRAIN_SECONDS:-300}" build-gpu/ulmfit --config configs/wikitext2.yaml \
  --set run.output_dir="$OUT/wikitext2" --set text.cache_dir="$OUT/cache" \
  --set pretrain.data.train="$data/train.txt.gz" --set pretrain.data.valid="$data/valid.txt.gz" \
  --set run.log_every=200 "${@}" 2>&1 | grep -v "^  " | grep -vE "^(run|text|model|pretrain|preset):"
echo "exit: $?"
cp "$OUT/wikitext2/metrics.jsonl" "$OUT/metrics.jsonl" 2>/dev/null || true
