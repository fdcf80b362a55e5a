#!/usr/bin/env bash
# Runs the main job on the embedded default (placeholder until the pipeline lands).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
./build/vimo --version
