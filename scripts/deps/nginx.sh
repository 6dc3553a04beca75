#!/usr/bin/env bash
# Install Debian's nginx for tests/deployment/test_nginx.py, which runs deploy/nginx/nginx.conf in front of replicas.
# Idempotent: does nothing when nginx is already on PATH. Needs root (apt-get). Installs
# the binary only: the tests start their own servers on loopback; no system-wide service is used.
set -euo pipefail
if command -v nginx >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d answers 101 so the package's post-install does not start a system-wide service.
policy=/usr/sbin/policy-rc.d
created=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
fi
apt-get install -y -qq --no-install-recommends nginx >/dev/null || { [ "$created" = 1 ] && rm -f "$policy"; exit 1; }
[ "$created" = 1 ] && rm -f "$policy"
command -v nginx >/dev/null
