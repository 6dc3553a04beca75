"""``hybridgate usage --decisions``: the learned routing's decision report from the ledger database."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import typer

from hybridgate.config import GatewayConfig
from hybridgate.errors import StoreUnavailableError
from hybridgate.ledger.decisions import read_report, render
from hybridgate.ledger.outcomes import Outcomes, SqliteOutcomes


async def read_decisions(store: Outcomes, config: GatewayConfig, since: float) -> list[dict[str, Any]]:
    await store.start()
    try:
        return await read_report(store, {n: r.try_ for n, r in config.routes.items()}, since)
    finally:
        await store.aclose()


def print_decisions(config: GatewayConfig, days: float | None, ledger: Path | None, *, as_json: bool) -> None:
    from hybridgate.pipeline.outcomes import outcome_store

    if ledger is not None and not ledger.exists():
        typer.echo(f"hybridgate: no ledger at {ledger}", err=True)
        raise typer.Exit(1)
    store = SqliteOutcomes(str(ledger)) if ledger is not None else outcome_store(config, os.environ)
    since = 0.0 if days is None else time.time() - days * 86400
    try:
        rows = asyncio.run(read_decisions(store, config, since))
    except StoreUnavailableError as exc:
        typer.echo(f"hybridgate: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(rows, indent=2) if as_json else render(rows))
