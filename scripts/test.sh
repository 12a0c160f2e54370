#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (CI runs exactly this).
# Tests that need ../shared/data skip with a message where it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 600
