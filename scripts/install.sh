#!/usr/bin/env bash
# Create .venv and install hybridgate into it (with test extras when asked: install.sh test).
# llama-cpp-python compiles from source the first time (about 5 minutes on 2 cores); pip caches it.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
extras=""
[ "${1:-}" = "test" ] && extras="[test]"
CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" .venv/bin/pip install --quiet -e ".${extras}"
