#!/usr/bin/env bash
# Runs the whole test suite (unit, integration, parity; gpu tests skip without CUDA), installing
# and building first what is missing. Extra arguments go to ctest (e.g. -L unit, -R config).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD="${VIMO_BUILD:-build}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
cd "$BUILD"
ctest --output-on-failure -j "${VIMO_TEST_JOBS:-2}" --timeout 900 "$@"
