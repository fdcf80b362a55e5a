#!/usr/bin/env bash
# Runs the whole test suite (unit, integration, parity; gpu tests skip without CUDA), installing
# and building first what is missing. Extra arguments go to ctest (e.g. -L unit, -R config).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD="${VIMO_BUILD:-build}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
cd "$BUILD"
# Skipped Python tests and their reasons are gathered here (tests/conftest.py) and summed up below.
export VIMO_SKIP_LOG="$PWD/Testing/skipped.tsv"
mkdir -p Testing && : > "$VIMO_SKIP_LOG"
rc=0
ctest --output-on-failure -j "${VIMO_TEST_JOBS:-2}" --timeout 900 "$@" || rc=$?
# ctest reports GoogleTest skips itself; the Python tests' skips are inside their files' entries.
n=$(wc -l < "$VIMO_SKIP_LOG")
if [ "$n" -gt 0 ]; then
  echo "$n Python test(s) skipped, by reason:"
  cut -f2 "$VIMO_SKIP_LOG" | sort | uniq -c | sort -rn | sed 's/^/  /'
else
  echo "no Python test skipped"
fi
exit $rc
