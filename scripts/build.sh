#!/usr/bin/env bash
# Configures and builds ulmfit into build/ (Release). Extra arguments go to cmake, e.g.
# scripts/build.sh -DCMAKE_PREFIX_PATH=/path/to/libtorch for a CUDA libtorch.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"
