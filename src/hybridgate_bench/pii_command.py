"""``hybridgate bench pii``: parse options -> ``privacy.bench.bench_pii`` -> print JSON or a summary.

Registered by cli.py under the ``bench`` group (``bench_app.command("pii")(pii)``). Offline: it
reads the data set named by ``--data`` and builds its own privacy guard; it never starts the
gateway. Bad input (missing file, malformed data set, unknown spaCy pipeline) exits 2.
"""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Annotated, Any

import typer

from hybridgate.commands.console import fail
from hybridgate.errors import ConfigError

NO_NER = "none"


def pii(
    data: Annotated[
        Path, typer.Option(help="Presidio-style data set: JSON records with full_text and gold spans")
    ],
    ner_model: Annotated[
        str, typer.Option(help='spaCy pipeline for names/places: "auto", "none" or a name or path')
    ] = "auto",
    rounds: Annotated[int, typer.Option(min=1, help="times each latency prompt is screened")] = 30,
    tokens: Annotated[int, typer.Option(min=1, help="latency prompt size, at 4 characters a token")] = 1000,
    json: Annotated[bool, typer.Option("--json", help="print the full report as JSON")] = False,
) -> None:
    """PII detection under a local_only policy: leaks, precision/recall per type, latency."""
    # Imported here: Presidio takes a second or two to import; other commands need not pay it.
    from hybridgate_bench.pii import bench_pii

    try:
        report = bench_pii(
            data, rounds=rounds, tokens=tokens, ner_model=None if ner_model == NO_NER else ner_model
        )
    except ConfigError as exc:
        fail(exc.message)
    except (OSError, ValueError) as exc:
        fail(str(exc))
    typer.echo(jsonlib.dumps(report, indent=2) if json else render(report))


def render(report: dict[str, Any]) -> str:
    """A few lines for a terminal: the leak counts, the structured types, the latency."""
    coverage = report["coverage"]
    lines = [
        f"{report['texts']} texts, detector {coverage['mode']} (NER: {coverage['ner_model'] or 'none'})",
        f"leaks (structured PII reaching a cloud tier under local_only): {report['leaks']}",
        f"leaks_any (PII of any type reaching a cloud tier): {report['leaks_any']}",
        f"{'type':<18}{'support':>8}{'recall':>8}{'precision':>10}",
    ]
    before = report["before_normalisation"]
    lines[-1] += f"{'(without normalising)':>34}"
    for kind, support in report["support"].items():
        recall = _fmt(report["recall"].get(kind))
        precision = _fmt(report["precision"].get(kind))
        old = f"{_fmt(before['recall'].get(kind))} / {_fmt(before['precision'].get(kind))}"
        lines.append(f"{kind:<18}{support:>8}{recall:>8}{precision:>10}{old:>34}")
    variants = report["unicode_variants"]
    lines.append(
        f"unicode variants ({variants['texts']} texts): leaks {variants['leaks_before']} without "
        f"normalising, {variants['leaks_after']} with; normalising costs CPU p50 "
        f"{report['normalise_cpu_p50_ms']} ms, p99 {report['normalise_cpu_p99_ms']} ms per prompt"
    )
    lines.append(
        f"latency per {report['latency_prompt_tokens']}-token prompt: "
        f"p50 {report['latency_p50_ms']} ms, p99 {report['latency_p99_ms']} ms "
        f"(load average {report['load_average_1m']} on {report['cpus']} CPUs)"
    )
    if coverage["not_covered"]:
        lines.append(f"not covered: {', '.join(coverage['not_covered'])}")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
