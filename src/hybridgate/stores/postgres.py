"""PostgreSQL plumbing shared by the key store and the ledger: which errors are outages, how
sync callers run a coroutine on a connection of their own, and how a DSN is named in
messages (``describe_dsn``).

One ``is_outage`` for both (they had drifted apart): an outage is a server the gateway cannot use
now (retry later, spool, serve a stale row); anything else is a bad statement or argument and is
raised as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

T = TypeVar("T")
# SQLSTATE classes that mean "the server is unavailable", not "this row is bad": connection
# exception, insufficient resources, operator intervention (shutdown), transaction rollback.
OUTAGE_CLASSES = ("08", "53", "57", "40")
LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout ran out: someone else holds the lock, try again later


def is_outage(exc: BaseException) -> bool:
    """True when the server is unavailable (retry later, spool), False when the statement is bad."""
    if isinstance(exc, asyncpg.DataError):  # an argument asyncpg could not encode
        return False
    if isinstance(exc, asyncpg.PostgresError):
        state = str(exc.sqlstate or "")
        return state[:2] in OUTAGE_CLASSES or state == LOCK_NOT_AVAILABLE
    return isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError)


def run_in_thread(work: Coroutine[Any, Any, T], thread_name: str) -> T:
    """Run ``work`` to completion on an event loop in a thread of its own and return its result,
    so sync code can call it whether or not its own thread already runs a loop."""
    with ThreadPoolExecutor(1, thread_name_prefix=thread_name) as pool:
        return pool.submit(asyncio.run, work).result()


def describe_dsn(dsn: str) -> str:
    """host:port/database of a DSN, never its password."""
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or ''}"
