#!/usr/bin/env bash
# Install with test extras, then run lint, types and the whole test suite with branch coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test
scripts/deps/chromium.sh   # the dashboard test drives a real headless Chromium
scripts/deps/postgres.sh   # the ledger tests start throwaway PostgreSQL servers on loopback
scripts/deps/redis.sh      # replica tests share limits through a real redis-server
scripts/deps/nginx.sh      # tests/deployment/test_nginx.py runs the shipped deploy/nginx config
.venv/bin/ruff check src tests
.venv/bin/mypy src tests
.venv/bin/lint-imports     # the layering contracts in pyproject.toml
# Branch coverage of src/ (config: [tool.coverage] in pyproject.toml), gateway child processes
# included; the data files go to the checkout whatever directory a test or its child runs in.
export COVERAGE_FILE="$PWD/.coverage"
# Cache bytecode even where the environment turns it off (PYTHONDONTWRITEBYTECODE=1): otherwise
# each worker compiles tests/ and src/ again to collect (14 s instead of 8) and so does each gateway
# child process it starts (~0.3 s of every start).
export PYTHONDONTWRITEBYTECODE=
rm -f .coverage .coverage.*
# Three workers (pytest-xdist), one test file each at a time: many tests wait on child processes and
# sockets, so three share the 2 cores well (slowest files first: tests/conftest.py). Each worker has
# its own session servers; coverage combines.
.venv/bin/pytest -q -n 3 --dist loadfile --cov --cov-report=term "$@"
