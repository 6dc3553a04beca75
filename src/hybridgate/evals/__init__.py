"""Offline evaluation: golden sets, graders, eval runs and reports, drift checks, policy replay.

Sits beside the request flow, not in it: these tools call the gateway's own pipeline exactly as
traffic would, and nothing on the request path (api/, pipeline, router, cascade, backends)
imports this package. Entry points are the ``hybridgate eval`` and ``hybridgate replay`` commands
(``hybridgate.commands.evals``).
"""

from __future__ import annotations

from hybridgate.errors import GoldenFileError
from hybridgate.evals.golden import GoldenSet, load_golden
from hybridgate.evals.runner import CaseResult, run_golden

__all__ = ["CaseResult", "GoldenFileError", "GoldenSet", "load_golden", "run_golden"]
