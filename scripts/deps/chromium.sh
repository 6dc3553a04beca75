#!/usr/bin/env bash
# Install Debian's headless-capable Chromium and its driver for the dashboard browser test.
# Idempotent: does nothing when both binaries are already on PATH. Needs root (apt-get).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
command -v chromium >/dev/null
