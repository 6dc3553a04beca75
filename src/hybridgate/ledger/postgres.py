"""The request ledger in PostgreSQL, shared by several gateway replicas; a local spool for outages.

Layer 5 of the flow, the same ``Ledger`` interface as the SQLite store. ``record()`` appends to an
in-memory list (``batches.Batches``, which holds the queueing, flush and close semantics of both
stores) and returns; one writer thread per process, with its own event loop and one asyncpg
connection, takes a batch every ``flush_interval_s`` (or ``batch_size`` records) and inserts it in
one ``executemany`` transaction. When PostgreSQL is unreachable the batch goes to the spool file
(``spool.py``, fsynced) instead and ``degraded_reason()`` says so (a batch statement that gets
no answer within ``timeout_s``, as from a hung server, counts as unreachable: the batch is spooled
at once, no retry); every ``retry_s`` the writer
reconnects, replays the spool, and empties it. Each record gets a unique ``row_key`` on its first
write attempt, so a batch written twice lands once. PostgreSQL refuses NUL in text, so NUL
characters in text fields (a caller's ``metadata.feature`` or ``user``) are stored as U+FFFD
rather than losing the row.

What survives what: ``close()`` (SIGTERM, via the server's lifespan) stores or spools everything
queued; once it is called, every write (the one in flight included) gets ``CLOSE_TIMEOUT_S`` in
all before the rest goes to the spool, so a hung (not refusing) server cannot outlast a
shutdown grace period. SIGKILL loses what is still in memory: records younger than
``flush_interval_s`` plus the batch being inserted at that instant (its transaction rolls back).
Spooled rows survive.

Reads (``usage``, ``recent``, ``decisions``...: ``hybridgate usage``, ``tco``/``decide``,
``replay --from-ledger``, budget seeding, the dashboard) each open one connection of their own,
run ``pg_rollups``' SELECTs on it and close it; the writer's connection is never borrowed. A
database no gateway has migrated yet reads as an empty ledger; an unreachable server raises
ConnectionError.

The request path only calls ``record()``, which never blocks or raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import asyncpg

from hybridgate.errors import ConfigError
from hybridgate.ledger import pg_rollups as pg
from hybridgate.ledger.base import Traffic
from hybridgate.ledger.batches import BatchedLedger, Batches
from hybridgate.ledger.migrations import CREATE_STAGE, INSERT, MERGE_STAGE, STAGE_COLUMNS, migrate
from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.rollups import ANY_ROW, RowFilter, check_group, no_decisions
from hybridgate.ledger.spool import Keyed, Spool
from hybridgate.stores.postgres import describe_dsn, is_outage, run_in_thread

logger = logging.getLogger(__name__)
T = TypeVar("T")

WRITE_TIMEOUT_S = 30.0  # migrations at connect; each batch statement gets [postgres] timeout_s
CLOSE_TIMEOUT_S = 5.0  # once close() is called: what is not stored by then is spooled
PURGE_CHUNK = 5000
BATCH_SIZE = 200  # rows per COPY from the writer thread


class PostgresLedger(BatchedLedger[LedgerRecord]):
    """A PostgreSQL-backed ledger. ``start()`` before recording; ``close()`` drains and stops.

    The read methods (``usage``, ``recent``, ``decisions``, ...) are each one short connection;
    ``record``, ``flush``, ``close`` and the counters come from ``BatchedLedger``. ``dropped`` also
    counts rows PostgreSQL rejects and records the spool could not take.
    """

    def __init__(
        self,
        dsn: str,
        *,
        spool_path: str,
        password: str | None = None,
        timeout_s: float = 2.0,
        batch_size: int = BATCH_SIZE,
        flush_interval_s: float = 0.5,
        max_queue: int = 100_000,
        retention_days: float | None = None,
        retry_s: float = 1.0,
        purge_every_s: float = 3600.0,
    ) -> None:
        self.dsn = dsn
        self.where = describe_dsn(dsn)  # host:port/database, for messages; never the password
        self._password = password
        self.timeout_s = timeout_s
        self.batch_size = batch_size
        self.retention_days = retention_days
        self.retry_s = retry_s
        self.purge_every_s = purge_every_s
        self.spool = Spool(spool_path)
        self._batches: Batches[LedgerRecord] = Batches(
            batch_size=batch_size, flush_interval_s=flush_interval_s, max_queue=max_queue
        )
        self._conn: asyncpg.Connection | None = None  # the writer thread's, only touched there
        self._reason: str | None = None
        self._next_purge = 0.0
        # Shutdown deadline: set by close() (any thread), applied by the writer's event loop.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing_at: float | None = None  # time.monotonic() of close()
        self._deadline: asyncio.Timeout | None = None  # the write in flight, if any

    def record(self, rec: LedgerRecord) -> None:
        """Queue one record for writing. Never blocks, never raises: a full queue drops it."""
        self._batches.add(rec)

    def degraded_reason(self) -> str | None:
        return self._reason

    # -- reading ---------------------------------------------------------------------------------

    def usage(
        self,
        by: str,
        days: float | None = None,
        traffic: str | None = "live",
        where: RowFilter = ANY_ROW,
    ) -> list[dict[str, Any]]:
        """Totals per ``by`` group (see ``USAGE_GROUPS``) over the last ``days``; None is all time.
        ``traffic`` is the class counted (None: every class)."""
        check_group(by)
        since = 0.0 if days is None else time.time() - days * 86400
        return self._read(lambda conn: pg.pg_rollup(conn, by, since, traffic, where), [])

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest ``limit`` rows, newest first, with list columns decoded."""
        return self._read(lambda conn: pg.pg_recent(conn, limit), [])

    def daily_series(
        self,
        by: str,
        since: float,
        traffic: str | None = "live",
        where: RowFilter = ANY_ROW,
    ) -> list[dict[str, Any]]:
        check_group(by)
        return self._read(lambda conn: pg.pg_daily_series(conn, by, since, traffic, where), [])

    def decisions(
        self,
        since: float,
        traffic: str | None = "live",
        where: RowFilter = ANY_ROW,
    ) -> dict[str, Any]:
        return self._read(lambda conn: pg.pg_decisions(conn, since, traffic, where), no_decisions())

    def traffic(self, since: float, traffic: str | None = "live") -> Traffic:
        async def read(conn: asyncpg.Connection) -> Traffic:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                totals = await pg.pg_backend_totals(conn, since, traffic)
                return totals, await pg.pg_hourly_tokens(conn, since, traffic)

        empty: Traffic = ([], {})
        return self._read(read, empty)

    def request_log(
        self,
        since: float,
        limit: int,
        traffic: str | None = "live",
        where: RowFilter = ANY_ROW,
    ) -> list[dict[str, Any]]:
        return self._read(lambda conn: pg.pg_request_log(conn, since, limit, traffic, where), [])

    def reported_models(self, since: float) -> list[dict[str, Any]]:
        return self._read(lambda conn: pg.pg_reported_models(conn, since), [])

    def logged_prompts(self, limit: int, skip_features: Sequence[str] = ()) -> list[dict[str, Any]]:
        return self._read(lambda conn: pg.pg_logged_prompts(conn, limit, skip_features), [])

    def _read(self, query: Callable[[asyncpg.Connection], Awaitable[T]], empty: T) -> T:
        """Run ``query`` on a short-lived connection, in a thread of its own so it works from sync
        and async callers alike; ``empty`` while no gateway has created the table yet. An
        unreachable server raises ConnectionError (an OSError)."""

        async def run() -> T:
            conn = await asyncpg.connect(self.dsn, password=self._password, timeout=self.timeout_s)
            try:
                return await query(conn)
            except asyncpg.UndefinedTableError:
                return empty
            finally:
                await conn.close(timeout=self.timeout_s)

        try:
            return run_in_thread(run(), "hybridgate-ledger-read")
        except Exception as exc:
            if is_outage(exc):
                raise ConnectionError(f"ledger: cannot read PostgreSQL at {self.where}: {exc}") from exc
            raise

    # -- writing -----------------------------------------------------------------------------

    def close(self) -> None:
        """As ``BatchedLedger.close``, but writes get ``CLOSE_TIMEOUT_S`` from now, then spool."""
        self._closing_at = time.monotonic()
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the writer's loop already closed
                loop.call_soon_threadsafe(self._hurry)
        super().close()

    def start(self) -> None:
        """Migrate the schema and replay the spool. Raises ConfigError if PostgreSQL answers but
        refuses (password, database, newer schema); an unreachable server only degrades."""
        if self._batches.started:
            return
        ready: Future[None] = Future()
        self._batches.start_writer(functools.partial(self._run, ready))
        ready.result()

    def _run(self, ready: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._open(ready))
            while ready.exception() is None:
                batch, last = self._batches.take(self._idle_s())
                loop.run_until_complete(self._store(batch))
                self._batches.done(len(batch))
                if last:
                    break
        finally:
            loop.run_until_complete(self._disconnect())
            self._loop = None
            loop.close()

    def _idle_s(self) -> float | None:
        """How long the writer may sleep with no records: retry soon while degraded."""
        if self._reason is not None or self.spool.has_rows():
            return self.retry_s
        if self.retention_days is not None:
            return max(self._next_purge - time.monotonic(), 0.0) + 0.01
        return None

    async def _open(self, ready: Future[None]) -> None:
        try:
            await self._store([], strict=True)
        except ConfigError as exc:
            ready.set_exception(exc)
            return
        ready.set_result(None)

    async def _store(self, batch: list[LedgerRecord], *, strict: bool = False) -> None:
        """Insert ``batch`` (after any spooled rows); when that fails, spool it instead.

        ``strict`` (at start-up): a server that answers but refuses raises ConfigError. Later the
        writer must survive anything, so every failure degrades and spools.
        """
        keyed = [(uuid.uuid4().hex, rec) for rec in batch]
        for attempt in (1, 2):  # a connection that went stale while idle gets one fresh retry
            try:
                async with self._closing_deadline():
                    conn = await self._connection()
                    await self.spool.replay(functools.partial(self._insert, conn), self._batches.lose)
                    await self._insert(conn, keyed)
                    await self._purge(conn)
            except Exception as exc:
                await self._disconnect()
                if strict and not is_outage(exc):
                    raise ConfigError(f"ledger: PostgreSQL at {self.where} refused: {exc}") from exc
                # A timeout is a hung or overloaded server, not a stale connection: no retry.
                retry = attempt == 1 and self._reason is None and not isinstance(exc, TimeoutError)
                if not retry or not is_outage(exc):
                    self._degrade(exc)
                    self._to_spool(keyed)
                    return
            else:
                self._recover()
                return

    @contextlib.asynccontextmanager
    async def _closing_deadline(self) -> AsyncIterator[None]:
        """No limit of its own until close(); from then on, what is left of ``CLOSE_TIMEOUT_S``."""
        async with asyncio.timeout(None) as deadline:
            self._deadline = deadline
            try:
                self._hurry()
                yield
            finally:
                self._deadline = None

    def _hurry(self) -> None:
        """On the writer's loop: bring the deadline of the write in flight forward once closing."""
        if self._closing_at is None or self._deadline is None:
            return
        when = asyncio.get_running_loop().time() + self._closing_at + CLOSE_TIMEOUT_S - time.monotonic()
        current = self._deadline.when()
        if current is None or when < current:
            self._deadline.reschedule(when)

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            conn = await asyncpg.connect(
                self.dsn, password=self._password, timeout=self.timeout_s, command_timeout=self.timeout_s
            )
            try:
                await migrate(conn)
                await conn.execute(CREATE_STAGE)
            except BaseException:
                await conn.close(timeout=self.timeout_s)
                raise
            self._conn = conn
        return self._conn

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()  # no goodbye round trip: the server may be gone

    async def _insert(self, conn: asyncpg.Connection, rows: list[Keyed]) -> None:
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            try:
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "ledger_stage",
                        records=[_pg_row(key, rec) for key, rec in chunk],
                        columns=STAGE_COLUMNS,
                        timeout=self.timeout_s,
                    )
                    await conn.execute(MERGE_STAGE, timeout=self.timeout_s)
            except Exception as exc:
                if is_outage(exc):
                    raise
                await self._insert_each(conn, chunk)  # keep the good rows of a batch with a bad one

    async def _insert_each(self, conn: asyncpg.Connection, rows: list[Keyed]) -> None:
        for key, rec in rows:
            try:
                await conn.execute(INSERT, *_pg_row(key, rec), timeout=self.timeout_s)
            except Exception as exc:
                if is_outage(exc):
                    raise
                logger.error("ledger: PostgreSQL rejected request %r: %s", rec.request_id, exc)
                self._batches.lose(1)

    async def _purge(self, conn: asyncpg.Connection) -> None:
        """Delete rows older than ``retention_days``, in chunks so no lock is held for long."""
        if self.retention_days is None or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + self.purge_every_s
        cutoff = time.time() - self.retention_days * 86400
        query = "DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE ts < $1 LIMIT $2)"
        while int((await conn.execute(query, cutoff, PURGE_CHUNK)).split()[-1]) == PURGE_CHUNK:
            pass

    def _to_spool(self, rows: list[Keyed]) -> None:
        if not rows:
            return
        try:
            self.spool.append(rows)
        except OSError:
            logger.exception("ledger: could not spool %d records to %s", len(rows), self.spool.path)
            self._batches.lose(len(rows))

    def _degrade(self, exc: BaseException) -> None:
        if self._reason is not None:
            return
        if is_outage(exc):
            logger.warning("ledger: PostgreSQL at %s unreachable (%r); spooling", self.where, exc)
        else:
            logger.error("ledger: storing in PostgreSQL at %s failed; spooling", self.where, exc_info=exc)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._reason = (
            f"ledger store PostgreSQL at {self.where} failing since {since} ({type(exc).__name__}); "
            f"records are spooled to {self.spool.path} and replayed when it is back"
        )

    def _recover(self) -> None:
        if self._reason is not None:
            logger.warning("ledger: PostgreSQL at %s is back; spool replayed", self.where)
        self._reason = None


def _pg_row(key: str, rec: LedgerRecord) -> tuple[Any, ...]:
    """The row to store: PostgreSQL rejects NUL in text, so NULs become U+FFFD (the row is kept)."""
    return tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in (key, *rec.to_row()))
