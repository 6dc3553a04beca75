#!/usr/bin/env bash
# Quick start: install, then serve on the embedded default (SmolLM2 on this machine; cloud tiers
# appear when OPENAI_API_KEY / ANTHROPIC_API_KEY are set). Extra arguments go to `hybridgate serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/hybridgate serve "$@"
