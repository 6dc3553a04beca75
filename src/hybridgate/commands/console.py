"""What a command prints: a failure on stderr with its exit code, a report as text or JSON.

Shared by the ``hybridgate`` commands and the ``hybridgate bench`` ones (``hybridgate_bench``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, NoReturn

import typer

from hybridgate.errors import GatewayError

JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON")]


def fail(problem: str | GatewayError | ValueError, code: int = 2) -> NoReturn:
    """``hybridgate: <problem>`` on stderr, then exit with ``code`` (2: unusable input)."""
    message = problem.message if isinstance(problem, GatewayError) else str(problem)
    typer.echo(f"hybridgate: {message}", err=True)
    if isinstance(problem, Exception):
        raise typer.Exit(code) from problem
    raise typer.Exit(code)


def print_report(report: dict[str, Any], as_json: bool) -> None:
    """``report`` as indented JSON, or one ``key  value`` line per entry."""
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        typer.echo(f"{key:28} {json.dumps(value)}")
