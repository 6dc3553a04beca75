"""The ``hybridgate`` command: parse arguments -> load config -> run. Nothing else lives here."""

from __future__ import annotations

import asyncio
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

from hybridgate.config import GatewayConfig, load_config
from hybridgate.errors import ConfigError
from hybridgate.ledger.spans import describe_telemetry

KEEP_ALIVE_S = 5  # idle client connections close after this: a proxy in front must close them sooner

app = typer.Typer(no_args_is_help=True, add_completion=False, help="A self-hosted hybrid LLM gateway.")

bench = typer.Typer(no_args_is_help=True, add_completion=False)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML config file; default: the embedded default")
]


def _config_or_exit(path: Path | None) -> GatewayConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        typer.echo(f"hybridgate: {exc.message}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="bind address (default from config: 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default from config: 8787)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes sharing the port")] = 1,
) -> None:
    """Start the gateway."""
    import uvicorn

    from hybridgate.api.front import uvicorn_options
    from hybridgate.app import CONFIG_ENV, create_app
    from hybridgate.backends.pins import enforce_pins
    from hybridgate.loop_lag import freeze_startup_heap

    settings = _config_or_exit(config)
    bind_host, bind_port = host or settings.server.host, settings.server.port if port is None else port
    # the health port (if any) listens on the same address as the serving port
    settings.server = settings.server.model_copy(update={"host": bind_host})
    try:
        application = create_app(settings)
        # checked here too (it also runs at start-up) so a wrong pin is a message, not a traceback
        asyncio.run(enforce_pins(settings, application.state.gateway.backends))
    except ConfigError as exc:
        typer.echo(f"hybridgate: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(startup_banner(settings, application.state.gateway, bind_host, bind_port, workers), err=True)
    options: dict[str, Any] = {
        "host": bind_host,
        "port": bind_port,
        "loop": "uvloop",
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 30,
        **uvicorn_options(settings.server),  # connection cap, header and body deadlines
        "timeout_keep_alive": KEEP_ALIVE_S,
    }
    if workers == 1:
        freeze_startup_heap()
        uvicorn.run(application, **options)
        return
    # Each worker builds its own gateway from the same file; they share the ledger (SQLite WAL)
    # but not rate-limit counters (see docs/operations.md).
    os.environ[CONFIG_ENV] = str(config.resolve()) if config else ""
    uvicorn.run("hybridgate.app:create_app_from_env", factory=True, workers=workers, **options)


def startup_banner(settings: GatewayConfig, gateway: Any, host: str, port: int, workers: int) -> str:
    """What ``serve`` prints before it listens: where, routes, backends, ledger, privacy, auth."""
    shown = f"[{host}]" if ":" in host else host
    routes = "; ".join(f"{name} -> {', '.join(route.try_)}" for name, route in settings.routes.items())
    backends = ", ".join(
        f"{name} ({cfg.type}{'' if cfg.type == 'embedded' else ' ' + str(getattr(cfg, 'model', ''))}, "
        f"{'local' if gateway.backends[name].local else 'cloud'})"
        for name, cfg in settings.backends.items()
    )
    ledger = settings.ledger
    where = (
        f"sqlite {Path(ledger.path).resolve()}"
        if ledger.store == "sqlite"
        else "postgres ([postgres] dsn; rows spooled to "
        + str(Path(ledger.spool_path).resolve())
        + " while it is down)"
    )
    coverage = gateway.privacy.coverage() if gateway.privacy else None
    privacy = (
        "off (no [privacy] section: prompts are not scanned)"
        if coverage is None
        else f"{settings.privacy.policy if settings.privacy else ''} policy, detection "
        f"{coverage['mode']}: {coverage['note']}"
    )
    auth = (
        f"on (keys: {settings.auth.keys_store}; admin key needed for /metrics and the /ui data)"
        if settings.auth.enabled
        else "off: anyone who can reach this port can use it (see docs/privacy.md to turn keys on)"
    )
    return "\n".join(
        [
            f"hybridgate listening on http://{shown}:{port} (environment {settings.environment}, "
            f"{workers} worker{'s' if workers != 1 else ''}); dashboard at /ui, health at /healthz",
            f"  routes:   {routes} (default: {settings.default_route})",
            f"  backends: {backends}",
            f"  ledger:   {where}",
            f"  privacy:  {privacy}",
            f"  auth:     {auth}",
            *(
                [
                    f"  health:   /livez, /readyz, /healthz on port {settings.server.health_port} now; "
                    f"port {port} opens once ready"
                ]
                if settings.server.health_port is not None
                else []
            ),
            *([f"  traces:   {describe_telemetry(settings)}"] if settings.telemetry else []),
        ]
    )


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="where to write the example config")] = Path("hybridgate.toml"),
    force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False,
) -> None:
    """Write a commented example config file."""
    if path.exists() and not force:
        typer.echo(f"hybridgate: {path} exists; use --force to overwrite", err=True)
        raise typer.Exit(1)
    path.write_text(resources.files("hybridgate").joinpath("hybridgate.example.toml").read_text())
    typer.echo(f"wrote {path}")


@app.command()
def usage(
    by: Annotated[
        str, typer.Option(help="feature|cohort|route|model|backend|day|environment|api_key|api|traffic")
    ] = "route",
    days: Annotated[float | None, typer.Option(help="only the last N days")] = None,
    traffic: Annotated[
        str, typer.Option(help="live (default) | shadow | replay | eval | judge | all")
    ] = "live",
    json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigOption = None,
    ledger: Annotated[Path | None, typer.Option(help="ledger file; default from config")] = None,
    decisions: Annotated[
        bool, typer.Option("--decisions", help="learned routing: strong share, regret, wasted strong calls")
    ] = False,
) -> None:
    """Print usage rollups from the ledger: requests, tokens, latency, cost."""
    if decisions:
        from hybridgate.commands.decisions import print_decisions

        print_decisions(_config_or_exit(config), days, ledger, as_json=json)
        return
    from hybridgate.backends.pins import remote_pins
    from hybridgate.ledger import read_ledger
    from hybridgate.ledger.drift import model_changes
    from hybridgate.ledger.records import TRAFFIC_CLASSES
    from hybridgate.ledger.rollups import USAGE_GROUPS
    from hybridgate.ledger.usage import all_cloud_text, render_usage

    if by not in USAGE_GROUPS:
        typer.echo(
            f"hybridgate: --by {by!r} is not a grouping; choose one of: {', '.join(USAGE_GROUPS)}", err=True
        )
        raise typer.Exit(2)
    if traffic != "all" and traffic not in TRAFFIC_CLASSES:
        choices = ", ".join((*TRAFFIC_CLASSES, "all"))
        typer.echo(
            f"hybridgate: --traffic {traffic!r} is not a traffic class; choose one of: {choices}", err=True
        )
        raise typer.Exit(2)
    cls = None if traffic == "all" else traffic
    try:
        settings = _config_or_exit(config)
        store = read_ledger(settings, os.environ, ledger)
        rows = store.usage(by, days, cls)
        # Everything the gateway's own tools sent, per class: the measured overhead on top of live.
        classes = [] if json else store.usage("traffic", days, None)
        drift = [] if json else model_changes(store.reported_models(_since(days)), remote_pins(settings))
        local = {name for name, backend in settings.backends.items() if backend.local}
        versus = None if json or cls != "live" else all_cloud_text(store.traffic(_since(days))[0], local)
    except ConfigError as exc:  # no such ledger file
        typer.echo(f"hybridgate: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    except OSError as exc:  # PostgreSQL unreachable
        typer.echo(f"hybridgate: {exc}", err=True)
        raise typer.Exit(1) from exc
    if drift:
        typer.echo("UPSTREAM MODEL DRIFT:\n" + "\n".join(f"  {line}" for line in drift) + "\n")
    typer.echo(render_usage(rows, by=by, as_json=json, traffic=traffic, classes=classes))
    if versus:
        typer.echo(versus)


def _since(days: float | None) -> float:
    import time

    return 0.0 if days is None else time.time() - days * 86400


def _keys() -> None:
    from hybridgate.commands import keys

    app.add_typer(keys.app, name="keys", help="Create, list and revoke virtual API keys.")


def _tco() -> None:
    from hybridgate.commands.tco import tco_command

    app.command("tco")(tco_command)


def _decide() -> None:
    from hybridgate.commands.decide import decide_command

    app.command("decide")(decide_command)


def _evals() -> None:
    from hybridgate.commands.evals import eval_command, replay_command

    app.command("eval")(eval_command)
    app.command("replay")(replay_command)


def _bench() -> None:
    from hybridgate_bench.commands import register as register_bench

    register_bench(bench)  # the benchmarks live outside the product (hybridgate_bench)
    app.add_typer(bench, name="bench", help="Benchmarks that print JSON (see docs/benchmarks.md).")


def _router() -> None:
    from hybridgate.commands import router

    app.add_typer(router.app, name="router", help="Train, evaluate and explain learned routers.")
    app.command("route")(router.explain)


# The commands that live in modules of their own, registered on demand: importing them all costs
# ~0.8 s, which ``serve`` (every gateway process) and ``keys create`` should not pay.
COMMANDS = {
    "keys": _keys,
    "tco": _tco,
    "decide": _decide,
    "eval": _evals,
    "replay": _evals,
    "router": _router,
    "route": _router,
    "bench": _bench,
}
BUILT_IN = {"serve", "init", "usage"}


def register_commands(argv: list[str]) -> None:
    """Register the command ``argv`` runs, or all of them for help, a typo or an embedding caller."""
    name = argv[1] if len(argv) > 1 else ""
    if name in BUILT_IN:
        return
    wanted = [COMMANDS[name]] if name in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for register in wanted:
        register()


register_commands(sys.argv)


def main() -> None:
    sys.exit(app())
