"""One ledger row per request: what was asked, where it went, what it cost.

Sits at the bottom of the flow (layer 5): the pipeline builds a ``LedgerRecord`` once a request
is done and hands it to the store and the metrics. This module is plain data and must not do
I/O, nor import anything above ``hybridgate.types`` / ``config`` / ``errors``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import math
import operator
from collections.abc import Collection
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from typing import Any

# Columns that hold lists; stored as JSON text because SQLite has no array type.
LIST_FIELDS = ("reasons", "attempts", "egress")
# Numbers come from upstreams too (token counts): clamped into what both stores can hold, since
# SQLite and PostgreSQL integers are signed 64-bit and SQLite stores NaN as NULL.
INT_FIELDS = ("prompt_tokens", "completion_tokens", "status", "escalations", "wasted_tokens")
FLOAT_FIELDS = ("ts", "ttft_ms", "latency_ms", "cost_usd", "saved_usd", "wasted_ms")
MAX_INT = 2**63 - 1
# Live traffic is demand; the others are the gateway's own tools, reported as measured overhead.
TRAFFIC_CLASSES = ("live", "shadow", "replay", "eval", "judge")


@dataclass(kw_only=True)
class LedgerRecord:
    """Everything the ledger keeps about one request. Times are unix seconds / milliseconds."""

    ts: float
    request_id: str
    api: str = "openai"
    api_key_id: str | None = None
    environment: str = "default"
    feature: str | None = None
    cohort: str | None = None
    route: str | None = None
    backend: str | None = None
    model: str | None = None
    reported_model: str | None = None
    system_fingerprint: str | None = None
    prompt_hash: str | None = None
    prompt_text: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: float | None = None
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    status: int = 200
    error_type: str | None = None
    stream: bool = False
    cache: str | None = None  # hit | semantic-hit | miss; None when the cache was not consulted
    saved_usd: float = 0.0  # a cache hit: what the cached answer cost when it was first made
    rule: str | None = None
    reasons: list[str] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)  # cascade.attempt.Attempt, as text
    # Cascade: answers produced by cheaper tiers that were not good enough, and what they cost.
    escalations: int = 0
    wasted_tokens: int = 0
    wasted_ms: float = 0.0
    # Privacy: entity types and counts found (never values), and the policy applied.
    pii: str | None = None
    privacy: str | None = None
    # Shadow traffic: the request_id of the live request this row shadows.
    shadow_of: str | None = None
    # Embeddings: inputs in the request, and how many of them the per-text cache answered.
    texts: int = 0
    cached_texts: int = 0
    # The egress gate's decisions, one per non-local backend: "backend:path:allowed|redacted|blocked".
    egress: list[str] = field(default_factory=list)
    # Who made the request: live traffic, or the gateway's own tools (TRAFFIC_CLASSES).
    traffic: str = "live"

    def __post_init__(self) -> None:
        values = self.__dict__  # built once per request: the common case (in range) only reads
        for name in INT_FIELDS:
            value = values[name]
            if type(value) is not int or not 0 <= value <= MAX_INT:
                values[name] = min(max(int(value), 0), MAX_INT)
        for name in FLOAT_FIELDS:
            value = values[name]
            if value is not None and not math.isfinite(value):
                values[name] = None if name == "ttft_ms" else 0.0

    @property
    def is_error(self) -> bool:
        return self.status >= 400

    def to_row(self) -> tuple[Any, ...]:
        """The record as a tuple in ``COLUMNS`` order, ready for ``executemany``. The writer
        thread runs this for every row of a batch while holding the GIL, so it is kept cheap:
        the columns in one C call, then the few that need converting (``_to_sql``'s result)."""
        row = list(_COLUMN_VALUES(self))
        for index in _LIST_INDEXES:
            row[index] = _json_list(row[index])
        row[_STREAM_INDEX] = int(bool(row[_STREAM_INDEX]))
        return tuple(row)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LedgerRecord:
        """Rebuild a record from a ``requests`` row; unknown keys (like ``id``) are ignored."""
        values = {name: _from_sql(name, row[name]) for name in COLUMNS if name in row}
        return cls(**values)


COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(LedgerRecord))
_COLUMN_VALUES = operator.attrgetter(*COLUMNS)
_LIST_INDEXES = tuple(COLUMNS.index(name) for name in LIST_FIELDS)
_STREAM_INDEX = COLUMNS.index("stream")


def row_to_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A ``requests`` row with lists decoded and ``stream`` as a bool, for JSON output."""
    return {name: _from_sql(name, value) for name, value in row.items()}


def prompt_hmac(secret: bytes, text: str) -> str:
    """HMAC-SHA256 of the prompt as hex: equal prompts match, but the text can't be recovered."""
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()


def cohort_label(secret: bytes, labels: Collection[str], cohort: str | None) -> str | None:
    """The cohort as the ledger keeps it: a configured label as it is, anything else (a user id,
    an e-mail sent as ``user``) as ``hmac:`` and 16 hex digits of its HMAC."""
    if cohort is None or cohort in labels:
        return cohort
    return "hmac:" + prompt_hmac(secret, cohort)[:16]


def _json_list(value: Any) -> str:
    """``json.dumps(list(value))``, the same text, without building an encoder for a list of
    strings (what every list column holds)."""
    items = list(value)
    if all(type(item) is str for item in items):
        return "[" + ", ".join(map(encode_basestring_ascii, items)) + "]"
    return json.dumps(items)


def _to_sql(name: str, value: Any) -> Any:
    if name in LIST_FIELDS:
        return _json_list(value)
    if name == "stream":
        return int(bool(value))
    return value


def _from_sql(name: str, value: Any) -> Any:
    if name in LIST_FIELDS:
        if isinstance(value, list):  # already decoded, e.g. a row from ``recent()``
            return list(value)
        return list(json.loads(value)) if value else []
    if name == "stream":
        return bool(value)
    return value
