"""Upstream model drift: the model an upstream reports changed, against its pin or what it said before.

Layer 5, beside the metrics: ``GatewayMetrics.observe`` hands every finished record to a
``DriftWatch``, which logs each change once and keeps it for ``/healthz`` and the dashboard.
``model_changes`` finds the same changes in the ledger's ``reported_models`` view, for ``usage``.
No I/O besides one log line per change; bounded memory (``MAX_CHANGES``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from hybridgate.ledger.records import LedgerRecord

log = logging.getLogger("hybridgate.drift")
MAX_CHANGES = 100  # distinct (backend, reported model) changes remembered; later ones are counted only


class DriftWatch:
    """Spots a reported model that differs from the pin, or from the first one seen for that
    (backend, requested model). Only successful rows with a reported model count."""

    def __init__(self, pins: Mapping[str, str] | None = None) -> None:
        self._pins = dict(pins or {})
        self._first: dict[tuple[str, str], str] = {}  # (backend, asked) -> first reported model
        self._changes: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.unrecorded = 0  # changes past MAX_CHANGES

    def observe(self, rec: LedgerRecord) -> None:
        if rec.is_error or not rec.reported_model or not rec.backend or not rec.model:
            return
        pinned = self._pins.get(rec.backend)
        if pinned is not None and rec.model == pinned:
            expected, kind = pinned, "pinned"
        else:
            expected = self._first.setdefault((rec.backend, rec.model), rec.reported_model)
            kind = "observed"
        if rec.reported_model == expected:
            return
        key = (rec.backend, expected, rec.reported_model)
        with self._lock:
            change = self._changes.get(key)
            if change is not None:
                change["responses"] += 1
                change["last_seen"] = rec.ts or time.time()
                return
            if len(self._changes) >= MAX_CHANGES:
                self.unrecorded += 1
                return
            self._changes[key] = {
                "backend": rec.backend,
                "kind": kind,
                "expected": expected,
                "reported": rec.reported_model,
                "first_seen": rec.ts or time.time(),
                "last_seen": rec.ts or time.time(),
                "responses": 1,
            }
        log.warning(
            "model drift: backend '%s' answered as '%s' but %s '%s' (request %s)",
            rec.backend,
            rec.reported_model,
            "the config pins" if kind == "pinned" else "it had answered as",
            expected,
            rec.request_id,
        )

    def changes(self) -> list[dict[str, Any]]:
        """Every change seen since start, oldest first (copies)."""
        with self._lock:
            return sorted((dict(c) for c in self._changes.values()), key=lambda c: c["first_seen"])


def model_changes(rows: list[dict[str, Any]], pins: Mapping[str, str]) -> list[str]:
    """Drift in the ledger's ``reported_models`` rows (backend, model, reported_model, first_ts,
    last_ts, requests), as lines for people: a pin answered by another model, or one requested
    model answered by more than one reported model in the period."""
    lines = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((str(row["backend"]), str(row["model"])), []).append(row)
    for (backend, model), seen in sorted(groups.items()):
        seen.sort(key=lambda r: r["first_ts"])
        pinned = pins.get(backend)
        if pinned is not None and model == pinned:
            for row in seen:
                if row["reported_model"] != pinned:
                    lines.append(
                        f"backend '{backend}' is pinned to '{pinned}' but {row['requests']:,} responses "
                        f"came from '{row['reported_model']}' (first {_when(row['first_ts'])})"
                    )
        elif len(seen) > 1:
            path = " -> ".join(f"'{r['reported_model']}' (from {_when(r['first_ts'])})" for r in seen)
            lines.append(f"backend '{backend}', model '{model}': upstream answered as {path}")
    return lines


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))
