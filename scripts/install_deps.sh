#!/usr/bin/env bash
# Installs the Debian packages ulmfit builds and runs with, skipping what is already there.
# Usage: scripts/install_deps.sh [--with-npm]   (--with-npm: also npm, for the default corpus)
set -euo pipefail

packages=(build-essential cmake pkg-config libtorch-dev libsentencepiece-dev libabsl-dev
          libyaml-cpp-dev libgtest-dev libfmt-dev zlib1g-dev
          # Gloo's headers, which libtorch's c10d ProcessGroupGloo.hpp includes: data-parallel
          # training (--nproc, torchrun, srun; docs/distributed.md).
          libgloo-dev
          # Without OpenBLAS, libtorch falls back to the reference BLAS: ~13x slower matmuls.
          libopenblas0-pthread
          # The fastText baseline of bench/ (and the smoke test of its experiment drivers).
          fasttext
          # /usr/bin/time, for the peak memory that bench/speed.sh reports.
          time)
if [[ "${1:-}" == "--with-npm" ]] && ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
echo "install_deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
