"""``hybridgate decide``: answers (file or prompts) + eval report + ledger -> a recommendation.

Registered by cli.py (``app.command("decide")(decide_command)``). The framework is in
``hybridgate.tco.decide``; this module gathers its inputs, asks the questions when run in a
terminal without an answers file, and prints the result. Exit code 2 for unusable input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from hybridgate.commands.tco import ConfigOption, checked, fail, ledger_workload
from hybridgate.config import load_config
from hybridgate.tco.answers import Answers, RouteScore, load_answers, load_eval_report, parse_answers
from hybridgate.tco.decide import Recommendation, decide
from hybridgate.tco.measure import Workload
from hybridgate.tco.model import parse_tokens

# Where `hybridgate eval` writes its report by default: read when present, like the ledger.
DEFAULT_EVAL_REPORT = Path("eval-report/report.json")


def decide_command(
    answers: Annotated[Path | None, typer.Option(help="answers file (TOML); see docs/tco.md")] = None,
    eval_report: Annotated[
        Path | None, typer.Option(help=f"eval report JSON; default {DEFAULT_EVAL_REPORT} if present")
    ] = None,
    ledger: Annotated[
        Path | None, typer.Option(help="SQLite ledger file; default: the ledger --config names, if any")
    ] = None,
    config: ConfigOption = None,
    days: Annotated[float, typer.Option(min=0.01, help="ledger window in days")] = 30.0,
    interactive: Annotated[
        bool | None, typer.Option(help="ask the questions; default: when no --answers and on a terminal")
    ] = None,
    write_config: Annotated[Path | None, typer.Option(help="write the starter config here")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Walk the 5-step framework: closed API, enterprise API, managed open weights, self-host or hybrid."""
    given = _answers(answers, sys.stdin.isatty() if interactive is None else interactive)
    scores = _scores(eval_report)
    workload = _workload(config, ledger, days)
    rec = checked(lambda: decide(given, workload, scores))
    result = rec.to_dict()
    result["inputs"] = {
        "eval_report": str(eval_report or DEFAULT_EVAL_REPORT) if scores is not None else None,
        "ledger_requests": workload.requests if workload else 0,
    }
    if write_config is not None:
        write_config.write_text(result["starter_config"])
        typer.echo(f"wrote {write_config}", err=True)
    typer.echo(json.dumps(result, indent=2) if json_output else render_recommendation(rec, result))


def _answers(path: Path | None, interactive: bool) -> Answers:
    if path is not None:
        return checked(lambda: load_answers(path))
    if not interactive:
        fail("give --answers FILE (TOML, see docs/tco.md), or run in a terminal to be asked")
    return checked(ask_answers)


def _scores(path: Path | None) -> dict[str, RouteScore] | None:
    if path is not None:
        return checked(lambda: load_eval_report(path))
    return checked(lambda: load_eval_report(DEFAULT_EVAL_REPORT)) if DEFAULT_EVAL_REPORT.exists() else None


def _workload(config: Path | None, ledger: Path | None, days: float) -> Workload | None:
    """The ledger's workload when there is one; a missing default SQLite file just means no data.

    A PostgreSQL ledger (``[ledger] store = "postgres"``) is always read: it has no file to miss.
    """
    settings = checked(lambda: load_config(config)).ledger
    if ledger is None and settings.store == "sqlite" and not Path(settings.path).exists():
        return None
    return ledger_workload(config, ledger, days)


def ask_answers() -> Answers:
    """The five steps as terminal questions; blank answers fall back to the ledger or defaults."""
    data = {
        "can_leave_network": typer.confirm("1. Data: may prompts leave your network?", default=True),
        "pii": _choose("   Personal data in prompts", ["none", "episodic", "systemic"]),
    }
    quality: dict[str, Any] = {
        "bar": typer.prompt("2. Quality bar: pass rate needed (0-1)", default=0.9, type=float)
    }
    meets = _choose("   Do open-weights models meet it?", ["unknown", "yes", "no"])
    if meets != "unknown":
        quality["open_weights_meet_bar"] = meets == "yes"
    volume: dict[str, Any] = {}
    daily = typer.prompt(
        "3. Volume: tokens per day (e.g. 5M; blank: from the ledger)", default="", show_default=False
    )
    if daily.strip():
        volume["daily_tokens"] = daily.strip()
    shape = _choose("   Traffic shape", ["unknown", "steady", "bursty"])
    if shape != "unknown":
        volume["shape"] = shape
    chunks = typer.prompt("   RAG: chunks in the corpus (blank: no RAG)", default="", show_default=False)
    if chunks.strip():
        volume["corpus_chunks"] = int(parse_tokens(chunks.strip()))
        volume["reembeds_per_month"] = typer.prompt(
            "   How often is the whole corpus re-embedded, per month", default=1.0, type=float
        )
    ops = {
        "gpu_oncall": typer.confirm("4. Ops: is someone on call for GPU nodes?", default=False),
        "version_pinning": typer.confirm("   Are model versions pinned and tested in CI?", default=False),
    }
    need = _choose("5. Fine-tuning need", ["none", "prompting", "weights"])
    return parse_answers(
        {"data": data, "quality": quality, "volume": volume, "ops": ops, "finetune": {"need": need}}
    )


def _choose(question: str, options: list[str]) -> str:
    """Ask until the answer is one of ``options``; the first is the default."""
    while True:
        answer = str(typer.prompt(f"{question} ({'/'.join(options)})", default=options[0])).strip().lower()
        if answer in options:
            return answer
        typer.echo(f"   please answer one of: {', '.join(options)}")


def render_recommendation(rec: Recommendation, result: dict[str, Any]) -> str:
    stop = f"stopped at step {rec.stopped_at}, a hard constraint" if rec.stopped_at else "all five steps"
    lines = [f"Recommendation: {rec.title} ({stop})", ""]
    lines += [
        f"  {s.number}. {s.name}: {s.finding}{'  [hard stop]' if s.hard_stop else ''}" for s in rec.steps
    ]
    lines += ["", "Why:", *(f"  - {reason}" for reason in rec.reasons)]
    if rec.numbers:
        lines += ["", "Numbers used:", *(f"  {key}: {value}" for key, value in rec.numbers.items())]
    lines += ["", "# ---- starter config (--write-config FILE saves it) ----", result["starter_config"]]
    return "\n".join(lines)
