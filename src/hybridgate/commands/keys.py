"""``hybridgate keys``: create, list and revoke virtual API keys in the keys database.

Registered by cli.py (``app.add_typer(keys.app, name="keys")``). Parses options, opens the
key store with the same pepper the gateway uses (the ``--pepper-env`` variable, else the
pepper file beside the database) and prints. With ``--config`` the store is the one the config
names (``[auth] keys_store``: the SQLite file, or PostgreSQL through ``[postgres]``). A key's
plaintext is printed once, by ``create``, on stdout alone so scripts can capture it; nothing else
ever prints a key or its hash.
"""

from __future__ import annotations

import json
import os
import time
from io import StringIO
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from hybridgate.auth.keys import SqliteKeyStore, pepper_file
from hybridgate.auth.pg_keys import postgres_key_store
from hybridgate.auth.records import KeyRecord
from hybridgate.auth.store import KeyStore
from hybridgate.commands.console import fail
from hybridgate.config import AuthConfig, load_config
from hybridgate.errors import GatewayError
from hybridgate.privacy.secret import load_secret

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Create, list and revoke virtual API keys."
)

_DEFAULTS = AuthConfig()
KeysDbOption = Annotated[Path, typer.Option("--keys-db", help="keys database (the gateway's auth.keys_path)")]
PepperEnvOption = Annotated[
    str, typer.Option("--pepper-env", help="variable holding the pepper; unset: a file beside the db")
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="the gateway's config: its [auth] store (overrides --keys-db)"),
]
DAY_S = 86_400
COLUMNS = (
    "id",
    "name",
    "env",
    "status",
    "created",
    "expires",
    "rpm",
    "tpm",
    "$/day",
    "$/month",
    "routes",
    "admin",
)


def _open(keys_db: Path, pepper_env: str, config: Path | None) -> KeyStore:
    try:
        if config is None:
            return SqliteKeyStore(keys_db, load_secret(pepper_env, os.environ, pepper_file(keys_db)))
        settings = load_config(config)
        if settings.auth.keys_store == "postgres":
            return postgres_key_store(settings, os.environ)
        path = Path(settings.auth.keys_path)
        return SqliteKeyStore(path, load_secret(settings.auth.pepper_env, os.environ, pepper_file(path)))
    except GatewayError as exc:
        fail(exc.message, 2)


@app.command()
def create(
    env: Annotated[str, typer.Option("--env", help="environment the key works in, e.g. prod")],
    name: Annotated[str, typer.Option("--name", help="who or what uses the key, e.g. app1")],
    budget_usd_day: Annotated[float | None, typer.Option(help="USD per UTC day")] = None,
    budget_usd_month: Annotated[float | None, typer.Option(help="USD per UTC month")] = None,
    rpm: Annotated[int | None, typer.Option(help="requests per minute")] = None,
    tpm: Annotated[int | None, typer.Option(help="tokens per minute")] = None,
    routes: Annotated[str | None, typer.Option(help="allowed routes, comma-separated; default all")] = None,
    expires_days: Annotated[float | None, typer.Option(help="expire after N days")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="may use admin endpoints")] = False,
    privacy: Annotated[
        str | None, typer.Option(help="privacy policy for this key: allow|redact|local_only|block")
    ] = None,
    keys_db: KeysDbOption = Path(_DEFAULTS.keys_path),
    pepper_env: PepperEnvOption = _DEFAULTS.pepper_env,
    config: ConfigOption = None,
) -> None:
    """Create a key and print it once: store it now, it cannot be shown again."""
    store = _open(keys_db, pepper_env, config)
    expires_at = None if expires_days is None else time.time() + expires_days * DAY_S
    try:
        plaintext, record = store.create(
            environment=env,
            name=name,
            budget_usd_day=budget_usd_day,
            budget_usd_month=budget_usd_month,
            rpm=rpm,
            tpm=tpm,
            routes=(routes or "").split(","),
            expires_at=expires_at,
            admin=admin,
            privacy=privacy,
        )
    except GatewayError as exc:
        fail(exc.message, 2)
    typer.echo(plaintext)
    typer.echo(
        f"created key {record.key_id} ({record.name}, environment {record.environment}); "
        "the key above is shown only this once",
        err=True,
    )


@app.command("list")
def list_keys(
    json_: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    env: Annotated[str | None, typer.Option("--env", help="only this environment")] = None,
    keys_db: KeysDbOption = Path(_DEFAULTS.keys_path),
    pepper_env: PepperEnvOption = _DEFAULTS.pepper_env,
    config: ConfigOption = None,
) -> None:
    """List keys by id with their limits and status (never the keys themselves)."""
    if config is None and not keys_db.exists():
        fail(f"no keys database at {keys_db}; `hybridgate keys create` makes one", 1)
    try:
        records = _open(keys_db, pepper_env, config).list(env)
    except GatewayError as exc:
        fail(exc.message, 2)
    now = time.time()
    if json_:
        typer.echo(json.dumps([{**r.to_dict(), "status": r.status(now)} for r in records], indent=2))
    else:
        typer.echo(_table(records, now), nl=False)


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="the key id shown by create and list")],
    keys_db: KeysDbOption = Path(_DEFAULTS.keys_path),
    pepper_env: PepperEnvOption = _DEFAULTS.pepper_env,
    config: ConfigOption = None,
) -> None:
    """Revoke a key. Every running gateway refuses it within 5 seconds."""
    if config is None and not keys_db.exists():
        fail(f"no keys database at {keys_db}", 1)
    try:
        record = _open(keys_db, pepper_env, config).revoke(key_id)
    except GatewayError as exc:
        fail(exc.message, 2)
    if record is None:
        fail(f"no key with id {key_id!r}; `hybridgate keys list` shows the ids", 1)
    typer.echo(f"revoked key {record.key_id} ({record.name}, environment {record.environment})")


def _table(records: list[KeyRecord], now: float) -> str:
    if not records:
        return "No keys.\n"
    table = Table(title="API keys")
    for column in COLUMNS:
        table.add_column(column)
    for r in records:
        limits = (r.rpm, r.tpm, r.budget_usd_day, r.budget_usd_month)
        cells = [r.key_id, r.name, r.environment, r.status(now), _date(r.created_at), _date(r.expires_at)]
        cells += ["-" if value is None else f"{value:g}" for value in limits]
        table.add_row(*cells, ",".join(r.routes) or "all", "yes" if r.admin else "")
    out = StringIO()
    Console(file=out, width=140, color_system=None, force_terminal=False).print(table)
    return out.getvalue()


def _date(moment: float | None) -> str:
    return "-" if moment is None else time.strftime("%Y-%m-%d", time.gmtime(moment))
