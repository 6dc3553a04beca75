"""``hybridgate bench router``: the learned router on RouteLLM's outcome data -> JSON or a summary.

Registered by ``hybridgate_bench.register``. Offline: it reads the data folder named by ``--data``;
it never starts the gateway. Unusable input exits 2 with a message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hybridgate.commands.console import JsonFlag, fail, print_report
from hybridgate.errors import GatewayError


def bench_router(
    data: Annotated[Path, typer.Option(help="RouteLLM outcome data: the folder with mmlu/ and gsm8k/")],
    settings: Annotated[
        str, typer.Option(help="comma-separated: mmlu,mmlu_subjects,gsm8k,gsm8k_cascade,gsm8k_gated,cross")
    ] = "mmlu,mmlu_subjects,gsm8k,gsm8k_cascade,cross",
    svg: Annotated[Path | None, typer.Option(help="also write the cost-quality curves as SVG")] = None,
    latency_rows: Annotated[int, typer.Option(min=1, help="prompts timed one by one per setting")] = 500,
    workers: Annotated[int, typer.Option(min=1, help="processes for the cross-validation folds")] = 1,
    latency_only: Annotated[
        bool, typer.Option(help="only the decision latency per setting (CPU and wall p50/p99), in ~a minute")
    ] = False,
    json: JsonFlag = False,
) -> None:
    """The learned router on RouteLLM's MMLU and GSM8K data, beside TF-IDF, random and oracle (same run)."""
    from hybridgate_bench.router import run_bench, run_latency

    names = [s.strip() for s in settings.split(",") if s.strip()]
    if latency_only:
        try:
            print_report(run_latency(data, names, latency_rows), json)
        except (GatewayError, ValueError) as exc:
            fail(exc)
        return
    try:
        report, curves = run_bench(data, names, latency_rows, workers)
    except (GatewayError, ValueError) as exc:
        fail(exc)
    if svg is not None:
        from hybridgate.training.svg import curves_svg

        svg.write_text(curves_svg(curves), encoding="utf-8")
    print_report(report, json)
