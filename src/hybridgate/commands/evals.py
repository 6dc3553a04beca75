"""``hybridgate eval`` and ``hybridgate replay``: parse arguments -> load files -> run -> report.

Registered by cli.py (``app.command("eval")(eval_command)``, ``app.command("replay")(replay_command)``).
All the work is in ``hybridgate.evals``; this module only wires options to it and maps outcomes to
exit codes: 0 done, 1 drift against the baseline, 2 a file or config that cannot be used.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hybridgate.commands.console import fail
from hybridgate.config import GatewayConfig, load_config
from hybridgate.errors import ConfigError
from hybridgate.evals.drift import compare, load_report
from hybridgate.evals.golden import GoldenSet, load_golden
from hybridgate.evals.html import to_html
from hybridgate.evals.replay import render_golden_replay, replay_golden
from hybridgate.evals.replay_ledger import Logged, logged_prompts, render_ledger_replay, replay_ledger
from hybridgate.evals.report import (
    build_report,
    routes_table,
    safety_tables,
    tags_table,
    to_markdown,
    write_outcomes,
)
from hybridgate.evals.runner import CaseResult, check_routes, judge_warnings, run_golden
from hybridgate.ledger import read_ledger
from hybridgate.types import Json

T = TypeVar("T")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML config file; default: the embedded default")
]
RoutesOption = Annotated[str | None, typer.Option(help="comma-separated routes, e.g. local,openai,auto")]
ConcurrencyOption = Annotated[int, typer.Option(min=1, help="cases in flight at once")]
JsonOption = Annotated[bool, typer.Option("--json", help="print the JSON report on stdout")]
JudgeOption = Annotated[str | None, typer.Option(help="route for judge cases (overrides the golden file)")]


def _or_exit(load: Callable[[], T]) -> T:
    """Run a loader; a ConfigError (or a subclass) becomes a message and exit code 2."""
    try:
        return load()
    except ConfigError as exc:
        fail(exc.message)


def _routes(value: str | None, default: list[str]) -> list[str]:
    routes = [r.strip() for r in (value or "").split(",") if r.strip()]
    return routes or default


def _run(
    settings: GatewayConfig, golden: GoldenSet, routes: list[str], concurrency: int, judge_route: str | None
) -> list[CaseResult]:
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal, transient=True) as progress:
        task = progress.add_task(f"eval {golden.name}", total=len(golden.cases) * len(routes))
        tally = {"pass": 0, "soft": 0, "fail": 0}

        def done(result: CaseResult) -> None:
            tally[result.verdict] += 1
            counts = f"[green]{tally['pass']}[/] / [yellow]{tally['soft']}[/] / [red]{tally['fail']}[/]"
            text = f"eval {golden.name} {counts}"
            progress.update(task, advance=1, description=text)

        job = run_golden(
            settings, golden, routes, concurrency=concurrency, judge_route=judge_route, on_done=done
        )
        return _or_exit(lambda: asyncio.run(job))


def _write(out: Path, report: Json) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(to_markdown(report))
    (out / "report.html").write_text(to_html(report))


def eval_command(
    golden: Annotated[Path, typer.Argument(help="golden set, a TOML file (see docs/evals.md)")],
    routes: RoutesOption = None,
    config: ConfigOption = None,
    concurrency: ConcurrencyOption = 4,
    out: Annotated[Path, typer.Option(help="directory for report.json/.md/.html")] = Path("eval-report"),
    json_output: JsonOption = False,
    outcomes: Annotated[Path | None, typer.Option(help="write the router-training outcome CSV here")] = None,
    baseline: Annotated[Path | None, typer.Option(help="a stored report.json to check drift against")] = None,
    margin: Annotated[
        float, typer.Option(min=0, max=1, help="allowed pass-rate drop vs the baseline")
    ] = 0.05,
    judge_route: JudgeOption = None,
) -> None:
    """Run a golden set against routes through the gateway and report pass/soft/fail, cost, latency."""
    settings = _or_exit(lambda: load_config(config))
    cases = _or_exit(lambda: load_golden(golden))
    chosen = _routes(routes, list(settings.routes))
    _or_exit(lambda: check_routes(settings, chosen))
    before = _or_exit(lambda: load_report(baseline)) if baseline else None
    for warning in judge_warnings(settings, cases, judge_route):
        typer.echo(f"hybridgate: warning: {warning}; it will fail", err=True)
    started = time.time()
    results = _run(settings, cases, chosen, concurrency, judge_route)
    report = build_report(results, chosen, golden=str(golden), name=cases.name, started=started)
    drift = compare(report, before, margin) if before else None
    if drift is not None:
        report["drift"] = {
            "baseline": str(baseline),
            "model_changes": drift.model_changes,
            "regressions": drift.regressions,
            "notes": drift.notes,
        }
    _write(out, report)
    if outcomes is not None:
        write_outcomes(outcomes, results, chosen)
    if json_output:
        typer.echo(json.dumps(report, indent=2))
    else:
        summary = ["", *routes_table(report), "", *tags_table(report), ""]
        if safety := safety_tables(report):
            summary += ["safety (refusal and leakage per route):", "", *safety, ""]
        typer.echo("\n".join(summary) + f"\nreport: {out / 'report.html'} (and report.md, report.json)")
    if drift is not None:
        typer.echo(drift.render(), err=json_output)
        if drift.failed:
            raise typer.Exit(1)


def replay_command(
    policy: Annotated[Path, typer.Option(help="candidate config file (routes, rules, backends)")],
    golden: Annotated[Path | None, typer.Argument(help="golden set to replay (or use --from-ledger)")] = None,
    config: ConfigOption = None,
    from_ledger: Annotated[bool, typer.Option(help="replay prompts logged in the ledger")] = False,
    ledger: Annotated[
        Path | None, typer.Option(help="SQLite ledger file; default: the ledger --config names")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="newest N logged prompts")] = 100,
    routes: RoutesOption = None,
    concurrency: ConcurrencyOption = 4,
    max_tokens: Annotated[int, typer.Option(min=1, help="answer length for ledger prompts")] = 256,
    judge_route: JudgeOption = None,
    json_output: JsonOption = False,
) -> None:
    """Compare the current config with a candidate routing policy on a golden set or logged traffic."""
    if (golden is None) == (not from_ledger):
        fail("give a golden file or --from-ledger (one of them)")
    current = _or_exit(lambda: load_config(config))
    candidate = _or_exit(lambda: load_config(policy))
    if golden is not None:
        cases = _or_exit(lambda: load_golden(golden))
        chosen = _routes(routes, ["auto"])
        _or_exit(lambda: check_routes(current, chosen))
        _or_exit(lambda: check_routes(candidate, chosen))
        job = replay_golden(
            current, candidate, cases, chosen, concurrency=concurrency, judge_route=judge_route
        )
        report = _or_exit(lambda: asyncio.run(job))
        text = render_golden_replay(report)
    else:
        logged = _logged(current, ledger, limit)
        if not logged:
            fail("no logged prompts to replay; prompts are logged only with ledger.log_prompts = true")
        job_ledger = replay_ledger(current, candidate, logged, concurrency=concurrency, max_tokens=max_tokens)
        report = _or_exit(lambda: asyncio.run(job_ledger))
        text = render_ledger_replay(report)
    typer.echo(json.dumps(report, indent=2) if json_output else text)


def _logged(config: GatewayConfig, path: Path | None, limit: int) -> list[Logged]:
    """Logged prompts from ``path`` (a SQLite file) or the ledger the config names (either store)."""
    try:
        return _or_exit(lambda: logged_prompts(read_ledger(config, os.environ, path), limit))
    except ConnectionError as exc:  # the shared ledger is down
        fail(str(exc))
