"""Access control at the HTTP edge: virtual API keys, rate limits and budgets per key.

``keys`` stores keys hashed in SQLite and verifies them, ``pg_keys`` the same in PostgreSQL for
replicas on several machines, both behind the ``store.KeyStore`` protocol; ``limits`` admits or
refuses a request for a verified key (requests and tokens per minute, USD per day and month) and
takes its cost afterwards; ``records`` is the key's row and its plaintext format; ``config`` is the ``[auth]``
config section. ``api/`` calls ``KeyStore.verify`` and ``Limiter.check`` before the pipeline
runs, and ``Limiter.charge`` once the ledger knows the cost. Nothing here imports the api,
pipeline, router, backends or ledger: only ``hybridgate.types/config/errors``.
"""

from hybridgate.auth.keys import SqliteKeyStore, pepper_file
from hybridgate.auth.limits import Limiter, MemoryLimiter, Reservation
from hybridgate.auth.pg_keys import PostgresKeyStore, postgres_key_store
from hybridgate.auth.records import KeyRecord
from hybridgate.auth.store import KeyStore
from hybridgate.config import AuthConfig
from hybridgate.errors import LimitExceededError

__all__ = [
    "AuthConfig",
    "KeyRecord",
    "KeyStore",
    "LimitExceededError",
    "Limiter",
    "MemoryLimiter",
    "PostgresKeyStore",
    "Reservation",
    "SqliteKeyStore",
    "pepper_file",
    "postgres_key_store",
]
