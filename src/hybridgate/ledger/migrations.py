"""The PostgreSQL ledger's schema as ordered, numbered migrations, and the statements that use it.

Layer 5, used by ``PostgresLedger`` at start-up. ``migrate`` applies, in one transaction under an
advisory lock, every migration newer than the version in ``schema_version``: replicas starting
together serialise on the lock, and running it again changes nothing. A database newer than this
code is refused rather than guessed at (so rolling back to an older hybridgate needs a database
at the older schema). Migrations are append-only: never edit a released one.

Nothing here waits forever: lock waits (the advisory lock, a table another session holds) give up
after ``LOCK_TIMEOUT_S`` and every statement after ``STATEMENT_TIMEOUT_S``; the caller treats
both as the server being unavailable (retry later), not as a refusal.

Columns mirror ``LedgerRecord`` (the SQLite ledger's ``COLUMN_TYPES``), with the same encodings
(lists as JSON text, ``stream`` as 0/1) so rows read back through ``records.row_to_dict``.
``row_key`` is a key the ledger gives each record when it first tries to store it; it is unique,
so a batch stored twice (a replayed spool, a commit whose acknowledgement was lost) lands once.
It is not ``request_id``: clients choose that one (``x-request-id``) and may repeat it.
A new ``LedgerRecord`` field needs a new migration (``ALTER TABLE requests ADD COLUMN ...``).
"""

from __future__ import annotations

import asyncpg

from hybridgate.errors import ConfigError
from hybridgate.ledger.records import COLUMNS

# pg_advisory_xact_lock key: any constant the replicas agree on ("hgledger" as hex, truncated).
LOCK_KEY = 0x68676C6564676572
LOCK_TIMEOUT_S = 15.0  # another replica migrating, or a session holding `requests`
STATEMENT_TIMEOUT_S = 300.0  # a migration (say, an index on a large table) may take minutes

MIGRATIONS: tuple[str, ...] = (
    # 1: the table. Written out, not derived from LedgerRecord: a released migration must not
    # change when the record grows (tests check the table still matches COLUMNS).
    """CREATE TABLE requests (
    id BIGSERIAL PRIMARY KEY,
    row_key TEXT NOT NULL UNIQUE,
    ts DOUBLE PRECISION NOT NULL,
    request_id TEXT NOT NULL,
    api TEXT NOT NULL,
    api_key_id TEXT,
    environment TEXT NOT NULL,
    feature TEXT,
    cohort TEXT,
    route TEXT,
    backend TEXT,
    model TEXT,
    reported_model TEXT,
    system_fingerprint TEXT,
    prompt_hash TEXT,
    prompt_text TEXT,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    ttft_ms DOUBLE PRECISION,
    latency_ms DOUBLE PRECISION NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    status INTEGER NOT NULL,
    error_type TEXT,
    stream SMALLINT NOT NULL,
    cache TEXT,
    saved_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    rule TEXT,
    reasons TEXT NOT NULL,
    attempts TEXT NOT NULL,
    escalations BIGINT NOT NULL,
    wasted_tokens BIGINT NOT NULL,
    wasted_ms DOUBLE PRECISION NOT NULL,
    pii TEXT,
    privacy TEXT,
    shadow_of TEXT
)""",
    # 2: what the rollups filter and group on (hybridgate usage, budgets by api key, retention).
    """CREATE INDEX requests_ts ON requests (ts);
CREATE INDEX requests_api_key_ts ON requests (api_key_id, ts);
CREATE INDEX requests_feature_ts ON requests (feature, ts);
CREATE INDEX requests_route_ts ON requests (route, ts);
CREATE INDEX requests_model_ts ON requests (model, ts);
CREATE INDEX requests_cohort_ts ON requests (cohort, ts)""",
    # 3: embeddings requests: how many inputs, and how many the per-text cache answered.
    """ALTER TABLE requests ADD COLUMN texts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE requests ADD COLUMN cached_texts BIGINT NOT NULL DEFAULT 0""",
    # 4: the egress gate's decisions per request (docs/privacy.md), a JSON list like `attempts`.
    "ALTER TABLE requests ADD COLUMN egress TEXT NOT NULL DEFAULT '[]'",
    # 5: traffic class (live | shadow | replay | eval | judge): reports count live traffic as demand.
    """ALTER TABLE requests ADD COLUMN traffic TEXT NOT NULL DEFAULT 'live'""",
    # 6: graded outcomes of live requests and the router's promotions (ledger/outcomes.py).
    """CREATE TABLE outcomes (
    request_id TEXT NOT NULL, api_key_id TEXT NOT NULL DEFAULT '', source TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL, route TEXT, feature TEXT, served TEXT NOT NULL, backend TEXT,
    cheap_score DOUBLE PRECISION, strong_score DOUBLE PRECISION,
    judge_cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0, router_sha256 TEXT, features TEXT,
    prompt_text TEXT, detail TEXT, PRIMARY KEY (request_id, api_key_id, source));
CREATE INDEX outcomes_route_ts ON outcomes (route, ts);
CREATE INDEX requests_request_id ON requests (request_id);
CREATE TABLE router_promotions (
    ts DOUBLE PRECISION NOT NULL, route TEXT NOT NULL, promoted INTEGER NOT NULL, reason TEXT NOT NULL,
    serving_sha256 TEXT, candidate_sha256 TEXT, rows_train BIGINT NOT NULL,
    rows_held_out BIGINT NOT NULL, metric TEXT NOT NULL, serving_value DOUBLE PRECISION,
    candidate_value DOUBLE PRECISION, improvement DOUBLE PRECISION, ci_low DOUBLE PRECISION,
    ci_high DOUBLE PRECISION)""",
)
SCHEMA_VERSION = len(MIGRATIONS)

# Batches are COPYed into a per-connection staging table, then moved over in one statement that
# skips keys already stored: COPY itself cannot skip conflicts, and is several times faster than
# row-by-row INSERTs. The staging table empties itself at every commit.
STAGE_COLUMNS = ("row_key", *COLUMNS)
CREATE_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS ledger_stage ON COMMIT DELETE ROWS AS "
    f"SELECT {', '.join(STAGE_COLUMNS)} FROM requests WITH NO DATA"
)
MERGE_STAGE = (
    f"INSERT INTO requests ({', '.join(STAGE_COLUMNS)}) SELECT {', '.join(STAGE_COLUMNS)} FROM ledger_stage "
    "ON CONFLICT (row_key) DO NOTHING"
)
INSERT = (
    f"INSERT INTO requests (row_key, {', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 2))}) "
    "ON CONFLICT (row_key) DO NOTHING"
)


async def migrate(conn: asyncpg.Connection) -> int:
    """Bring the schema up to ``SCHEMA_VERSION``; returns the version found before."""
    timeout = STATEMENT_TIMEOUT_S
    async with conn.transaction():
        # SET LOCAL: only this transaction; the connection's later writes keep the server's default.
        await conn.execute(f"SET LOCAL lock_timeout = '{int(LOCK_TIMEOUT_S * 1000)}ms'", timeout=timeout)
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY, timeout=timeout)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            timeout=timeout,
        )
        found = int(
            await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version", timeout=timeout)
        )
        if found > SCHEMA_VERSION:
            raise ConfigError(
                f"the ledger database has schema version {found} but this hybridgate knows up to "
                f"{SCHEMA_VERSION}; upgrade hybridgate or point [postgres] dsn at another database"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            await conn.execute(MIGRATIONS[version - 1], timeout=timeout)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version, timeout=timeout)
    return found
