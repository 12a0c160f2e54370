# Sourced by the bench/gpu_*.sh scripts: builds ulmfit into build-gpu/ against the CUDA libtorch
# of a pip `torch`, on a lent GPU machine without Debian's -dev packages. Put their .deb files
# in build-debs/ first (apt-get download libabsl-dev libabsl20220623 libyaml-cpp-dev
# libyaml-cpp0.7 libfmt-dev libfmt9 libsentencepiece-dev libsentencepiece0 libgtest-dev
# zlib1g-dev; for bench/speed.sh also time, fasttext and libfasttext0, whose programs this puts
# on PATH; not yet tried on a GPU machine). Set GPU_TESTS=1 to build the tests too, or
# GPU_TARGETS="ulmfit bench_data" to build only those. Expects $OUT (the results folder).
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
prefix=$PWD/build-debs/prefix
if ls build-debs/*.deb >/dev/null 2>&1; then
  mkdir -p "$prefix"
  for d in build-debs/*.deb; do dpkg-deb -x "$d" "$prefix"; done
  sed -i "s|^prefix=/usr|prefix=$prefix/usr|" "$prefix"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc
  export PKG_CONFIG_PATH=$prefix/usr/lib/x86_64-linux-gnu/pkgconfig
  export LD_LIBRARY_PATH=$prefix/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
  export PATH=$PATH:$prefix/usr/bin
fi
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
t0=$(date +%s)
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DULMFIT_BUILD_TESTS="${GPU_TESTS:-0}" \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$prefix/usr" -DCMAKE_CUDA_ARCHITECTURES=90 >"$OUT/cmake.log" 2>&1 \
  || { tail -30 "$OUT/cmake.log"; exit 1; }
cmake --build build-gpu -j"$(nproc)" ${GPU_TARGETS:+--target $GPU_TARGETS} >"$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -40; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
