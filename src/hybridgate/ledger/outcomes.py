"""Graded outcomes of live requests, and the router's promotions, beside the ledger's rows.

An **outcome** says how good a request's cheap-tier answer was (``cheap_score`` in [0, 1]) and,
when known, the strong tier's (``strong_score``), graded by the strong tier as a judge, by the
route's checks, or by the caller's feedback (``source``). One row per request, key and source:
a second grade from the same source replaces the first (feedback is idempotent per request id).
No prompt text unless ``[ledger] log_prompts``: the router's features (``features``, JSON) are
stored instead, so retraining needs no prompts.

A **promotion** row records every ``hybridgate router retrain`` verdict with its numbers,
promoted or refused.

``SqliteOutcomes`` keeps both tables in the SQLite ledger file; ``PostgresOutcomes`` in the
PostgreSQL ledger (created by ledger migration 6). Calls are async; SQLite runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from hybridgate.errors import StoreUnavailableError

SOURCES = ("judge", "check", "feedback")


@dataclass(kw_only=True)
class Outcome:
    request_id: str
    api_key_id: str = ""  # the key that made the request; feedback must come from it
    source: str  # judge | check | feedback
    ts: float
    route: str | None = None
    feature: str | None = None
    served: str  # cheap | strong: the tier whose answer the caller got
    backend: str | None = None
    cheap_score: float | None = None
    strong_score: float | None = None
    judge_cost_usd: float = 0.0  # what grading cost (the judge's calls): overhead, not demand
    router_sha256: str | None = None  # the router file that decided the request
    features: str | None = None  # the router's features of the prompt (JSON), for retraining
    prompt_text: str | None = None  # only with [ledger] log_prompts
    detail: str | None = None  # the judge's or check's words, short


OUTCOME_COLUMNS = tuple(f.name for f in fields(Outcome))


@dataclass(frozen=True, kw_only=True)
class Promotion:
    ts: float
    route: str
    promoted: bool
    reason: str
    serving_sha256: str | None
    candidate_sha256: str | None
    rows_train: int
    rows_held_out: int
    metric: str
    serving_value: float | None
    candidate_value: float | None
    improvement: float | None  # serving - candidate (smaller is better for the metric)
    ci_low: float | None
    ci_high: float | None


PROMOTION_COLUMNS = tuple(f.name for f in fields(Promotion))

SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS outcomes (
    request_id TEXT NOT NULL, api_key_id TEXT NOT NULL DEFAULT '', source TEXT NOT NULL,
    ts REAL NOT NULL, route TEXT, feature TEXT, served TEXT NOT NULL, backend TEXT,
    cheap_score REAL, strong_score REAL, judge_cost_usd REAL NOT NULL DEFAULT 0,
    router_sha256 TEXT, features TEXT, prompt_text TEXT, detail TEXT,
    PRIMARY KEY (request_id, api_key_id, source))""",
    "CREATE INDEX IF NOT EXISTS outcomes_route_ts ON outcomes (route, ts)",
    """CREATE TABLE IF NOT EXISTS router_promotions (
    ts REAL NOT NULL, route TEXT NOT NULL, promoted INTEGER NOT NULL, reason TEXT NOT NULL,
    serving_sha256 TEXT, candidate_sha256 TEXT, rows_train INTEGER NOT NULL,
    rows_held_out INTEGER NOT NULL, metric TEXT NOT NULL, serving_value REAL,
    candidate_value REAL, improvement REAL, ci_low REAL, ci_high REAL)""",
)

_UPSERT = (
    f"INSERT INTO outcomes ({', '.join(OUTCOME_COLUMNS)}) VALUES ({', '.join('?' * len(OUTCOME_COLUMNS))}) "
    "ON CONFLICT (request_id, api_key_id, source) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in OUTCOME_COLUMNS[3:])
)
_PROMOTE = (
    f"INSERT INTO router_promotions ({', '.join(PROMOTION_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(PROMOTION_COLUMNS))})"
)
# The live request a feedback call rates: the caller's own (same key id), newest first.
_OWNED = (
    "SELECT route, backend, feature FROM requests WHERE request_id = ? AND api_key_id = ? "
    "AND traffic = 'live' ORDER BY ts DESC LIMIT 1"
)


class Outcomes:
    """The shared queries; subclasses run SQL with ``?`` placeholders."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def _run(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def save(self, outcome: Outcome) -> None:
        values = asdict(outcome)
        await self._run(_UPSERT, [values[c] for c in OUTCOME_COLUMNS])

    async def owned_request(self, request_id: str, api_key_id: str) -> dict[str, Any] | None:
        """The caller's own live request with this id, or None (another key's, or none)."""
        rows = await self._run(_OWNED, (request_id, api_key_id))
        return rows[0] if rows else None

    async def outcomes(self, route: str | None = None, since: float = 0.0) -> list[Outcome]:
        where, args = "ts >= ?", list[Any]([since])
        if route is not None:
            where, args = where + " AND route = ?", [*args, route]
        rows = await self._run(f"SELECT * FROM outcomes WHERE {where} ORDER BY ts, request_id", args)
        return [Outcome(**{c: row[c] for c in OUTCOME_COLUMNS}) for row in rows]

    async def served_by(self, since: float = 0.0) -> list[dict[str, Any]]:
        """Answered live requests per route, feature and backend (the tiers' shares)."""
        sql = (
            "SELECT route, feature, backend, COUNT(*) AS requests FROM requests WHERE ts >= ? "
            "AND traffic = 'live' AND status = 200 AND route IS NOT NULL AND backend IS NOT NULL "
            "AND cache IS DISTINCT FROM 'hit' AND cache IS DISTINCT FROM 'semantic-hit' "
            "GROUP BY route, feature, backend"
        )
        return await self._run(sql, (since,))

    async def record_promotion(self, promotion: Promotion) -> None:
        values = asdict(promotion)
        await self._run(_PROMOTE, [int(v) if isinstance(v, bool) else v for v in values.values()])

    async def promotions(self, route: str | None = None) -> list[dict[str, Any]]:
        where, args = ("WHERE route = ?", [route]) if route else ("", [])
        rows = await self._run(f"SELECT * FROM router_promotions {where} ORDER BY ts", args)
        return [{**row, "promoted": bool(row["promoted"])} for row in rows]


class SqliteOutcomes(Outcomes):
    """Both tables in the SQLite ledger file (WAL, one connection, calls in a worker thread)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, check_same_thread=False, timeout=5.0)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            for statement in SQLITE_SCHEMA:
                conn.execute(statement)
            # feedback looks requests up by id; the ledger creates `requests` when it starts
            with contextlib.suppress(sqlite3.OperationalError):
                conn.execute("CREATE INDEX IF NOT EXISTS requests_request_id ON requests (request_id)")
            conn.commit()
            self._conn = conn
        return self._conn

    async def start(self) -> None:
        await asyncio.to_thread(self._execute, "SELECT 1", ())

    async def aclose(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _execute(self, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
        with self._lock:
            conn = self._open()
            try:
                rows = [dict(r) for r in conn.execute(sql, tuple(args)).fetchall()]
            except sqlite3.OperationalError as exc:
                if "no such table: requests" in str(exc):
                    return []  # no request recorded yet: nothing to rate
                raise StoreUnavailableError(f"outcomes: SQLite failed: {exc}") from exc
            conn.commit()
            return rows

    async def _run(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._execute, sql, args)


def to_postgres(sql: str) -> str:
    """``?`` placeholders as ``$1, $2, ...`` (no ``?`` appears in the statements' text)."""
    parts = sql.split("?")
    return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))


class PostgresOutcomes(Outcomes):
    """Both tables in the PostgreSQL ledger (migration 6); a failing server raises
    ``StoreUnavailableError``. The pool lives on the event loop that calls ``start``."""

    def __init__(self, dsn: str, *, password: str | None, timeout_s: float, pool_size: int = 2) -> None:
        self._dsn, self._password, self._timeout_s, self._size = dsn, password, timeout_s, pool_size
        self._pool: Any = None

    async def start(self) -> None:
        import asyncpg

        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self._dsn, password=self._password, timeout=self._timeout_s, min_size=0, max_size=self._size
            )

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()

    async def _run(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        import asyncpg

        if self._pool is None:
            await self.start()
        try:
            async with self._pool.acquire(timeout=self._timeout_s) as conn:
                rows = await conn.fetch(to_postgres(sql), *args, timeout=self._timeout_s)
        except asyncpg.UndefinedTableError:
            return []  # a database no gateway has migrated yet: no data
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreUnavailableError(f"outcomes: PostgreSQL failed: {exc}") from exc
        return [dict(row) for row in rows]
