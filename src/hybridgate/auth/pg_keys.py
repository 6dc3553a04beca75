"""Virtual API keys in PostgreSQL, shared by replicas on several machines; a cache rides out outages.

The same store as ``keys.SqliteKeyStore`` (same key format, HMAC-SHA256 under the pepper, lookup
by key id then one constant-time compare, the same 401 messages) in one database every replica and
the ``hybridgate keys`` CLI reach through ``[postgres]``. Chosen by ``[auth] keys_store = "postgres"``.

Request path (``verify``, async): an asyncpg pool opened by ``start()`` on the server's loop. A
key id's row is cached in process for ``cache_ttl_s`` (5 s), so a revocation made anywhere is seen
by every replica within 5 s; an unknown id is remembered for 1 s apart from known keys, in a
bounded LRU of its own (``key_cache.py``), so a new key is found within 1 s and a flood of made-up
ids never evicts real keys. While PostgreSQL is unreachable, a key this replica verified within
``stale_ttl_s`` (300 s) keeps working from its cached row (a key revoked in the last 5 s before
the outage too), any other key gets ``KeyStoreUnavailableError`` (503, not 401: it may be valid),
and ``degraded_reason()`` says so for /healthz. After a failure PostgreSQL is not asked again for
``retry_s`` (1 s), so an outage costs no timeouts per request; the first successful lookup ends
the degraded state. Lookups wait their turn for one of the pool's connections (up to ``wait_s``,
by default ``timeout_s``): a busy pool is not an outage, and a lookup that waits too long gets a 503 (or its
stale copy) without marking the store degraded.

Deadlines, whatever the failure (refused, hung: connections accepted but never answered, slow):
PostgreSQL gets ``timeout_s`` per lookup in all (retry included), and a lookup that runs out
degrades the store exactly as a refused connection does; the connection it used is dropped, never
reused. A key with a cached row never waits on PostgreSQL: once its row is older than
``cache_ttl_s`` it is refreshed in the background (one query per key id at a time) and requests
wait for that refresh until ``stale_wait_s`` (100 ms) after it started, then are served from the
cached row: a request that arrives later than that, while the refresh still hangs, does not wait
at all, so a hang that has not yet tripped the degraded state costs one short wait per key, not
one per request (and none once degraded). So a revocation is seen within ``cache_ttl_s`` while
PostgreSQL answers within ``stale_wait_s``. An unknown key gets its 503 within ``timeout_s``.
``not_ready()`` (for /readyz) is a reason until PostgreSQL has been reached once since start:
without it no key works.

Admin path (``create``, ``list``, ``revoke``, ``get``; sync, for the CLI): a short-lived
connection in a thread of its own, so it works from sync and async callers alike. Imports only
``hybridgate.config/errors``, ``hybridgate.stores`` and its own package.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import asyncpg

from hybridgate.auth.key_cache import KeyCache
from hybridgate.auth.pg_schema import (
    FIELDS,
    INSERT,
    PEPPER_CHECK,
    REVOKE,
    SELECT_ONE,
    Connection,
    migrate,
    to_record,
    to_row,
)
from hybridgate.auth.records import KeyRecord
from hybridgate.auth.store import HashedKeys, StoredKey
from hybridgate.config import GatewayConfig
from hybridgate.errors import ConfigError, KeyStoreUnavailableError
from hybridgate.stores.postgres import describe_dsn, is_outage, run_in_thread

logger = logging.getLogger(__name__)

T = TypeVar("T")
CACHE_TTL_S = 5.0
STALE_TTL_S = 300.0
RETRY_S = 1.0
STALE_WAIT_S = 0.1  # how long after a refresh starts a request with a cached row waits for it


class PostgresKeyStore(HashedKeys):
    """Hashed virtual keys in the PostgreSQL database at ``dsn``; ``pepper`` keys the HMAC."""

    def __init__(
        self,
        dsn: str,
        pepper: bytes,
        *,
        password: str | None = None,
        timeout_s: float = 2.0,
        pool_size: int = 4,
        clock: Callable[[], float] = time.time,
        cache_ttl_s: float = CACHE_TTL_S,
        stale_ttl_s: float = STALE_TTL_S,
        retry_s: float = RETRY_S,
        wait_s: float | None = None,
        stale_wait_s: float = STALE_WAIT_S,
    ) -> None:
        if not pepper:
            raise ConfigError("the API-key pepper is empty; set the auth.pepper_env variable")
        self.dsn = dsn
        self.where = describe_dsn(dsn)
        self._password = password
        self._pepper = pepper
        self._timeout_s = timeout_s
        self._wait_s = timeout_s if wait_s is None else wait_s  # for a free connection
        self._size = pool_size
        self._clock = clock
        self._stale_ttl_s = stale_ttl_s
        self._retry_s = retry_s
        self._stale_wait_s = stale_wait_s
        self._cache = KeyCache(ttl_s=cache_ttl_s, stale_ttl_s=stale_ttl_s)
        self._slots: asyncio.Semaphore | None = None  # one per pool connection, made on the loop
        self._pool: asyncpg.Pool | None = None
        self._migrated = False
        self._reason: str | None = None
        self._retry_at = 0.0
        # key id -> its refresh in flight, and the loop time until which a request waits for it
        self._refreshing: dict[str, tuple[asyncio.Task[StoredKey | None], float]] = {}

    # -- request path ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the pool and migrate. ConfigError if PostgreSQL answers but refuses (password,
        newer schema, another pepper); an unreachable server only degrades."""
        if self._pool is None:
            # min_size 0: no connection at creation, so an unreachable server degrades below.
            self._pool = await asyncpg.create_pool(
                self.dsn, password=self._password, timeout=self._timeout_s, min_size=0, max_size=self._size
            )
        try:
            await self._reach()
        except Exception as exc:
            if not is_outage(exc):
                await self.aclose()
                if isinstance(exc, ConfigError):
                    raise
                raise ConfigError(f"keys: PostgreSQL at {self.where} refused: {exc}") from exc
            self._degrade(exc)

    async def not_ready(self) -> str | None:
        """None once PostgreSQL was reached since start; until then it is tried (within
        ``timeout_s``) and the reason returned: a replica that never reached it has no key to serve."""
        if self._migrated:
            return None
        try:
            await self._reach()
        except Exception as exc:
            self._degrade(exc)
            return f"the key store PostgreSQL at {self.where} has not been reached since start ({exc!r})"
        self._recover()
        return None

    async def _reach(self) -> None:
        """Connect and migrate within ``timeout_s``, whether PostgreSQL refuses or never answers."""
        if self._pool is None:
            raise KeyStoreUnavailableError("the key store is closed")
        async with asyncio.timeout(self._timeout_s):
            conn = await self._pool.acquire()
            try:
                await self._migrate(conn)
            except BaseException:
                conn.terminate()  # a hung or broken connection is never reused
                raise
            finally:
                await self._pool.release(conn, timeout=self._timeout_s)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()  # no goodbye round trips: the server may be gone

    def degraded_reason(self) -> str | None:
        return self._reason

    async def _lookup(self, key_id: str) -> StoredKey | None:
        now = self._clock()
        hit = self._cache.fresh(key_id, now)
        if hit is not None:
            return hit.stored
        stale = self._cache.stale(key_id, now)
        refresh, wait_until = self._refresh(key_id)
        try:
            if stale is None:
                return await asyncio.shield(refresh)  # bounded by timeout_s inside
            wait_s = 0.0 if self._reason is not None else wait_until - asyncio.get_running_loop().time()
            done, _ = await asyncio.wait({refresh}, timeout=max(wait_s, 0.0))
            return refresh.result() if done else stale
        except KeyStoreUnavailableError:
            if stale is not None:
                return stale  # verified recently: keep serving it through the outage
            raise

    def _refresh(self, key_id: str) -> tuple[asyncio.Task[StoredKey | None], float]:
        """The one query for this key id in flight (started if none is; it caches what it reads)
        and the loop time until which a request with a cached row waits for it."""
        refresh = self._refreshing.get(key_id)
        if refresh is None:
            loop = asyncio.get_running_loop()
            task = loop.create_task(self._fetch_and_keep(key_id))
            refresh = self._refreshing[key_id] = (task, loop.time() + self._stale_wait_s)
            task.add_done_callback(lambda done: self._refreshed(key_id, done))
        return refresh

    def _refreshed(self, key_id: str, task: asyncio.Task[StoredKey | None]) -> None:
        self._refreshing.pop(key_id, None)
        if not task.cancelled():
            task.exception()  # retrieved here: a caller that served the cached row never looks

    async def _fetch_and_keep(self, key_id: str) -> StoredKey | None:
        stored = await self._fetch(key_id)
        self._cache.put(key_id, stored, self._clock())
        return stored

    async def _fetch(self, key_id: str) -> StoredKey | None:
        if self._pool is None or time.monotonic() < self._retry_at:
            raise KeyStoreUnavailableError(self._unavailable())
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._size)
        try:  # a free connection is a matter of load, not of PostgreSQL's health: never degrade here
            await asyncio.wait_for(self._slots.acquire(), min(self._wait_s, self._timeout_s))
        except TimeoutError as exc:
            raise KeyStoreUnavailableError(self._busy()) from exc
        try:
            if time.monotonic() < self._retry_at:  # failed while this lookup waited: don't ask
                raise KeyStoreUnavailableError(self._unavailable())
            return await self._query(self._pool, key_id)
        finally:
            self._slots.release()

    async def _query(self, pool: asyncpg.Pool, key_id: str) -> StoredKey | None:
        """One lookup holding a slot, so the pool has a connection free (or room to open one): a
        timeout here is PostgreSQL's, not the pool's. ``timeout_s`` in all, retry included."""
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        for attempt in (1, 2):  # a pooled connection cut by a server restart gets one fresh retry
            try:
                async with asyncio.timeout_at(deadline):
                    row = await self._select(pool, key_id)
            except Exception as exc:
                late = asyncio.get_running_loop().time() >= deadline
                if attempt == 1 and not late and self._reason is None and is_outage(exc):
                    continue
                self._degrade(exc)
                raise KeyStoreUnavailableError(self._unavailable()) from exc
            self._recover()
            return StoredKey(row[0], to_record(row[1:])) if row else None
        raise AssertionError("unreachable")

    async def _select(self, pool: asyncpg.Pool, key_id: str) -> asyncpg.Record | None:
        conn = await pool.acquire()
        try:
            await self._migrate(conn)
            row: asyncpg.Record | None = await conn.fetchrow(SELECT_ONE, key_id)
            return row
        except BaseException:
            conn.terminate()  # cut off mid-query (a deadline, a dead server): never reused
            raise
        finally:
            await pool.release(conn, timeout=self._timeout_s)

    async def _migrate(self, conn: Connection) -> None:
        if not self._migrated:
            await migrate(conn, self._digest(PEPPER_CHECK))
            self._migrated = True

    def _unavailable(self) -> str:
        return (
            f"the API-key store (PostgreSQL at {self.where}) is unreachable and this gateway has not "
            "verified this key recently, so it cannot check it; retry shortly"
        )

    def _busy(self) -> str:
        return (
            f"the API-key store is busy: every connection to PostgreSQL at {self.where} was in use for "
            f"{self._wait_s:g}s and this gateway has not verified this key recently; retry shortly"
        )

    def _degrade(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + self._retry_s
        if self._reason is not None:
            return
        if is_outage(exc):
            logger.warning("keys: PostgreSQL at %s unreachable (%r); serving recent keys", self.where, exc)
        else:
            logger.error("keys: reading PostgreSQL at %s failed", self.where, exc_info=exc)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._reason = (
            f"key store PostgreSQL at {self.where} failing since {since} ({type(exc).__name__}); keys "
            f"verified in the last {self._stale_ttl_s:g}s still work, others get 503"
        )

    def _recover(self) -> None:
        self._retry_at = 0.0  # answered (a lookup or the readiness probe): ask it again at once
        if self._reason is not None:
            logger.warning("keys: PostgreSQL at %s is back", self.where)
        self._reason = None

    # -- admin path (CLI) --------------------------------------------------------------------

    @property
    def location(self) -> str:
        return f"PostgreSQL at {self.where}"

    def _insert(self, record: KeyRecord, key_hash: str) -> bool:
        values = (key_hash, *to_row(record))
        return self._run(lambda conn: conn.execute(INSERT, *values)) == "INSERT 0 1"

    def revoke(self, key_id: str) -> KeyRecord | None:
        """Revoke a key at once for this store (other replicas: within ``cache_ttl_s``).

        Returns the key's record, or None if no key has that id. Revoking twice keeps the first time.
        """

        async def revoke(conn: asyncpg.Connection) -> asyncpg.Record | None:
            await conn.execute(REVOKE, key_id, self._clock())
            return await conn.fetchrow(SELECT_ONE, key_id)

        row = self._run(revoke)
        self._cache.drop(key_id)
        return to_record(row[1:]) if row else None

    def get(self, key_id: str) -> KeyRecord | None:
        row = self._run(lambda conn: conn.fetchrow(SELECT_ONE, key_id))
        return to_record(row[1:]) if row else None

    def list(self, environment: str | None = None) -> list[KeyRecord]:
        """Every key's record (never a key or hash), oldest first; optionally of one environment."""
        where, args = ("WHERE environment = $1", (environment,)) if environment else ("", ())
        query = f"SELECT {FIELDS} FROM api_keys {where} ORDER BY created_at"
        rows = self._run(lambda conn: conn.fetch(query, *args))
        return [to_record(row) for row in rows]

    def _run(self, operation: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Migrate and run ``operation`` on a short-lived connection, on a loop in its own thread.
        An unreachable server raises KeyStoreUnavailableError."""

        async def run() -> T:
            conn = await asyncpg.connect(self.dsn, password=self._password, timeout=self._timeout_s)
            try:
                await migrate(conn, self._digest(PEPPER_CHECK))
                return await operation(conn)
            finally:
                await conn.close(timeout=self._timeout_s)

        try:
            return run_in_thread(run(), "hybridgate-keys")
        except Exception as exc:
            if is_outage(exc):
                message = f"keys: cannot reach PostgreSQL at {self.where}: {exc}"
                raise KeyStoreUnavailableError(message) from exc
            raise


def postgres_key_store(config: GatewayConfig, env: Mapping[str, str]) -> PostgresKeyStore:
    """The store ``[auth] keys_store = "postgres"`` names. The pepper must come from the variable:
    a pepper file would differ from machine to machine, and every replica must share it."""
    if config.postgres is None:
        raise ConfigError('auth.keys_store = "postgres" needs a [postgres] section')
    pepper = env.get(config.auth.pepper_env)
    if not pepper:
        raise ConfigError(
            f'auth.keys_store = "postgres" needs the API-key pepper in ${config.auth.pepper_env} '
            "(auth.pepper_env), the same on every replica and for the CLI; a pepper file would "
            "differ per machine"
        )
    server = config.postgres
    return PostgresKeyStore(
        server.dsn,
        pepper.encode(),
        password=env.get(server.password_env) if server.password_env else None,
        timeout_s=server.timeout_s,
        pool_size=server.pool_size,
        cache_ttl_s=config.auth.key_cache_ttl_s,
    )
