#!/usr/bin/env bash
# Install Debian's PostgreSQL server binaries for the ledger tests (tests/postgres_server.py starts
# throwaway servers from them on loopback; no cluster is created or started here).
# Idempotent: does nothing when initdb and postgres are already installed. Needs root (apt-get).
set -euo pipefail
have_binaries() {
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then
            return 0
        fi
    done
    return 1
}
if have_binaries; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
have_binaries
