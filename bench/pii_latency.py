"""Run ``hybridgate bench pii`` from a source checkout, with the shared data set as default.

Offline tool, never imported by the gateway; the benchmark itself is
``hybridgate_bench.pii`` and the command is ``hybridgate_bench.pii_command``. This wrapper
only supplies ``--data ../shared/data/pii/synth_dataset_v2.json`` when none is given:

    .venv/bin/python bench/pii_latency.py [--json] [--ner-model none] [--rounds N] [--tokens N]
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from hybridgate_bench.pii_command import pii

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pii" / "synth_dataset_v2.json"

if __name__ == "__main__":
    if not any(arg == "--data" or arg.startswith("--data=") for arg in sys.argv[1:]):
        sys.argv[1:1] = ["--data", str(DEFAULT_DATA)]
    typer.run(pii)
