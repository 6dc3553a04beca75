"""``hybridgate router retrain``: retrain learned routes on their production outcomes, gated.

Registered on the ``router`` sub-app by commands/router.py. Reads the outcomes from the ledger
database the config names, trains a candidate per learned route, promotes it only when it is
better on held-out rows (training/retrain.py), and tells the replicas: with ``[redis]`` by the
reload signal, else each replica's file polling picks the new file up. ``--schedule`` repeats
every ``[router] retrain_every_s``. Exit 2 on a bad config or router file, 1 when the ledger
database cannot be read.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from hybridgate.config import GatewayConfig, load_config
from hybridgate.errors import GatewayError, StoreUnavailableError


async def _run(settings: GatewayConfig, routes: list[str], dry_run: bool, folds: int) -> list[dict[str, Any]]:
    from hybridgate.pipeline.outcomes import outcome_store
    from hybridgate.training.retrain import retrain
    from hybridgate.training.train import TrainingOptions

    store = outcome_store(settings, os.environ)
    await store.start()
    try:
        reports = []
        for route in routes:
            options = TrainingOptions(folds=folds, bootstrap=200)
            verdict = await retrain(settings, store, route, options=options, dry_run=dry_run)
            reports.append(verdict.report())
        return reports
    finally:
        await store.aclose()


async def _history(settings: GatewayConfig) -> list[dict[str, Any]]:
    from hybridgate.pipeline.outcomes import outcome_store

    store = outcome_store(settings, os.environ)
    await store.start()
    try:
        return await store.promotions()
    finally:
        await store.aclose()


def _signal(settings: GatewayConfig) -> str:
    if settings.redis is None:
        every = settings.router.reload_interval_s
        return f"replicas reload the new file within [router] reload_interval_s ({every:g} s)"
    from hybridgate.router.signal import publish_reload

    received = asyncio.run(publish_reload(settings.redis, os.environ))
    return f"reload signalled to {received} replica(s)"


def retrain_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="TOML config file")],
    route: Annotated[list[str] | None, typer.Option(help="learned route (default: every one)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="compare only; never promote")] = False,
    schedule: Annotated[
        bool, typer.Option("--schedule", help="repeat every [router] retrain_every_s")
    ] = False,
    history: Annotated[bool, typer.Option("--history", help="list past promotions and refusals")] = False,
    folds: Annotated[int, typer.Option(min=2, help="cross-validation folds for the threshold")] = 5,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Retrain learned routers on graded production outcomes; promote only a clearly better one."""
    try:
        settings = load_config(config)
    except GatewayError as exc:
        typer.echo(f"hybridgate: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    if history:
        _print(asyncio.run(_history(settings)), json_out)
        return
    routes = route or [name for name, r in settings.routes.items() if r.router == "learned"]
    if schedule and settings.router.retrain_every_s <= 0:
        typer.echo("hybridgate: --schedule needs [router] retrain_every_s > 0", err=True)
        raise typer.Exit(2)
    while True:
        _once(settings, routes, dry_run, json_out, folds)
        if not schedule:
            return
        time.sleep(settings.router.retrain_every_s)


def _once(settings: GatewayConfig, routes: list[str], dry_run: bool, json_out: bool, folds: int) -> None:
    try:
        reports = asyncio.run(_run(settings, routes, dry_run, folds))
    except StoreUnavailableError as exc:
        typer.echo(f"hybridgate: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    except GatewayError as exc:
        typer.echo(f"hybridgate: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    if any(r["promoted"] for r in reports):
        for report in reports:
            report["reload"] = _signal(settings) if report["promoted"] else None
    _print(reports, json_out)


def _print(reports: list[dict[str, Any]], json_out: bool) -> None:
    if json_out:
        typer.echo(json.dumps(reports, indent=2))
        return
    for report in reports:
        verdict = "PROMOTED" if report["promoted"] else "refused"
        typer.echo(f"{report['route']}: {verdict}: {report['reason']}")
