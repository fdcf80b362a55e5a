#!/usr/bin/env bash
# Installs what vimo needs (Debian packages, a Python venv with the torch wheel that provides
# LibTorch) and builds it. Idempotent: a second run only rebuilds what changed.
#   VIMO_VENV   venv location (default: $HOME/.cache/vimo/venv, outside the clone so it is reused)
#   VIMO_BUILD  build directory (default: build)
#   VIMO_JOBS   parallel compile jobs (default: number of cores)
#   VIMO_BUILD_BENCH=ON  also build the benchmarks in bench/ (off by default: they are not tests)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VIMO_VENV:-$HOME/.cache/vimo/venv}"
BUILD="${VIMO_BUILD:-build}"
JOBS="${VIMO_JOBS:-$(nproc)}"
say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

# 1. Debian packages.
PKGS=(build-essential cmake pkg-config git python3 python3-venv ccache libgtest-dev libgmock-dev
      nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libhdf5-dev libsentencepiece-dev sentencepiece
      libpcre2-dev default-jre-headless libspdlog-dev libgloo-dev)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q || die "apt-get update failed (network or permissions)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" || die "apt-get install failed for: ${missing[*]}"
else
  say "Debian packages present"
fi

# 2. Python venv with torch (LibTorch) and the packages scripts/tests use; pins in scripts/requirements.txt.
PY=python3
if [ ! -x "$VENV/bin/python" ]; then
  say "creating venv $VENV"
  mkdir -p "$(dirname "$VENV")"
  $PY -m venv "$VENV" || die "python3 -m venv failed (install python3-venv)"
fi
STAMP="$VENV/.vimo-requirements"
if ! cmp -s scripts/requirements.txt "$STAMP"; then
  say "installing Python packages into $VENV (torch is large: the first time takes several minutes)"
  "$VENV/bin/pip" install -q --upgrade pip || die "pip upgrade failed"
  "$VENV/bin/pip" install -q -r scripts/requirements.txt || die "pip install -r scripts/requirements.txt failed"
  cp scripts/requirements.txt "$STAMP"
else
  say "Python packages present in $VENV"
fi
"$VENV/bin/python" -c "import torch" || die "torch does not import from $VENV; delete $STAMP and rerun"

# 3. Configure and build.
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/vimo/ccache}"
export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-10G}"
# Paths under the clone are hashed relative to it, so another clone of the same sources hits the cache.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  say "configuring $BUILD (Release)"
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DVIMO_PYTHON="$VENV/bin/python" \
    -DVIMO_BUILD_BENCH="${VIMO_BUILD_BENCH:-OFF}" >/dev/null \
    || die "cmake configure failed (see the messages above)"
fi
say "building with $JOBS jobs"
cmake --build "$BUILD" -j "$JOBS" || die "build failed"
say "done: $BUILD/vimo"
