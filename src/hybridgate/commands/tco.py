"""``hybridgate tco``: parse options -> measure the ledger (optional) -> model -> render.

Registered by cli.py (``app.command("tco")(tco_command)``). The math is in ``hybridgate.tco``;
this module only turns options into ``Assumptions``, says where each input came from, and maps
bad input to exit code 2 and "no data" to exit code 1. ``decide`` lives in ``commands/decide.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer

from hybridgate.config import GatewayConfig, load_config
from hybridgate.errors import ConfigError
from hybridgate.ledger import read_ledger
from hybridgate.ledger.pricing import Pricer
from hybridgate.tco.chart import render_svg
from hybridgate.tco.chart_png import render_png
from hybridgate.tco.measure import Overhead, Workload, read_workload
from hybridgate.tco.model import Assumptions, parse_tokens, parse_volumes
from hybridgate.tco.profiles import PROFILES, People, customise, get_profile
from hybridgate.tco.report import build_report, render_csv, render_json, render_table
from hybridgate.tco.throughput import LoadPlan, MeasureError, ServerThroughput, base_url, measure_server
from hybridgate.types import Usage

T = TypeVar("T")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="config file (ledger path, local tiers)")
]
LedgerOption = Annotated[
    Path | None, typer.Option(help="SQLite ledger file; default: the ledger --config names")
]
DaysOption = Annotated[float | None, typer.Option(help="only the last N days of the ledger")]
Money = Annotated[float | None, typer.Option(min=0)]
DEFAULT_INPUT_SHARE = 0.75  # typical chat traffic: three prompt tokens for every completion token
DEFAULT_LOCAL_SHARE = 0.5
CHART_FORMATS = (".svg", ".png")
DEFAULT_EMBED_PRICE = 0.02  # OpenAI text-embedding-3-small, $ per million tokens


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"hybridgate: {message}", err=True)
    raise typer.Exit(code)


def checked(load: Callable[[], T]) -> T:
    """Run ``load``; bad input (ValueError, ConfigError, a missing file) becomes a message and exit 2."""
    try:
        return load()
    except ConfigError as exc:
        fail(exc.message)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))


def ledger_workload(config: Path | None, ledger: Path | None, days: float | None) -> Workload | None:
    """The measured workload, or None when the ledger has no traffic in the period.

    ``--ledger`` names a SQLite file; without it, the store the config names (SQLite or PostgreSQL).
    """
    settings: GatewayConfig = checked(lambda: load_config(config))
    local = {name for name, backend in settings.backends.items() if backend.local}
    store = checked(lambda: read_ledger(settings, os.environ, ledger))
    try:
        return checked(lambda: read_workload(store, local, days=days, now=time.time()))
    except ConnectionError as exc:  # the shared ledger is down: not bad input
        fail(str(exc), 1)


def _price(
    blended: float | None,
    model: str | None,
    provider: str | None,
    input_share: float | None,
    w: Workload | None,
) -> tuple[float, str]:
    if blended is not None:
        return blended, "given"
    if model is not None:
        pricer = Pricer()
        if not pricer.price_known(provider, model):
            fail(
                f"genai-prices has no price for model '{model}' (provider {provider!r}); use --blended-price"
            )
        share = input_share if input_share is not None else (w.input_share if w else DEFAULT_INPUT_SHARE)
        per_in = pricer.price(provider, model, Usage(prompt_tokens=1_000_000), None)
        per_out = pricer.price(provider, model, Usage(completion_tokens=1_000_000), None)
        return share * per_in + (1 - share) * per_out, f"genai-prices {model}, {share:.0%} prompt tokens"
    if w is not None and w.cloud_usd_per_mtok is not None:
        return w.cloud_usd_per_mtok, "ledger (cloud spend / cloud tokens)"
    fail("no API price: pass --blended-price or --model (the ledger has no priced cloud traffic)")


def tco_command(
    daily_tokens: Annotated[str | None, typer.Option(help="volumes to compare, e.g. 500k,5M,20M")] = None,
    from_ledger: Annotated[
        bool, typer.Option(help="add a row for the volume measured in the ledger")
    ] = False,
    days: DaysOption = None,
    ledger: LedgerOption = None,
    config: ConfigOption = None,
    blended_price: Annotated[float | None, typer.Option(min=0, help="API $ per million tokens")] = None,
    model: Annotated[str | None, typer.Option(help="price the API with this model from genai-prices")] = None,
    provider: Annotated[str | None, typer.Option(help="provider for --model, e.g. openai")] = None,
    input_share: Annotated[float | None, typer.Option(min=0, max=1, help="prompt share of tokens")] = None,
    profile: Annotated[str, typer.Option(help=f"GPU profile: {', '.join(PROFILES)}")] = "l4",
    selfhost_monthly: Annotated[float | None, typer.Option(help="all-in self-host $/month")] = None,
    gpu_hourly: Money = None,
    throughput_tps: Annotated[float | None, typer.Option(help="tokens/s per node")] = None,
    utilisation: Annotated[float | None, typer.Option(help="average share of capacity used")] = None,
    platform_overhead: Money = None,
    people_fte: Annotated[float, typer.Option(help="FTE fraction running the stack")] = 0.25,
    fte_yearly_usd: Annotated[float, typer.Option(help="yearly cost of one FTE")] = 200_000.0,
    overhead: Annotated[
        float | None,
        typer.Option(
            min=0, help="retries/evals as a share of traffic, e.g. 0.4; default: the ledger's, else 0"
        ),
    ] = None,
    local_share: Annotated[float | None, typer.Option(help="hybrid: share of tokens served locally")] = None,
    embed_daily_tokens: Annotated[
        str | None, typer.Option(help="embedding tokens per day (RAG); default: the ledger's, else 0")
    ] = None,
    embed_price: Annotated[
        float | None, typer.Option(help="embedding API $ per Mtok; default: the ledger's, else 0.02")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    csv_output: Annotated[bool, typer.Option("--csv", help="print CSV")] = False,
    chart: Annotated[Path | None, typer.Option(help="write a chart here (a .svg or .png file)")] = None,
    measure: Annotated[
        str | None,
        typer.Option(help="load-test this OpenAI-compatible server (vLLM, llama.cpp) for the throughput"),
    ] = None,
    measure_concurrency: Annotated[str, typer.Option(help="--measure: concurrency levels")] = "1,2,4",
    measure_requests: Annotated[int, typer.Option(help="--measure: requests per level")] = 8,
    measure_max_tokens: Annotated[int, typer.Option(help="--measure: max_tokens per request")] = 64,
    measure_budget_s: Annotated[float, typer.Option(help="--measure: time limit for the whole test")] = 120.0,
    measure_model: Annotated[
        str | None, typer.Option(help="--measure: model name; default: the server's first")
    ] = None,
    measure_key_env: Annotated[
        str | None, typer.Option(help="--measure: env var holding the server's API key")
    ] = None,
) -> None:
    """Monthly cost on a closed API, self-hosted and hybrid, and the break-even daily volume."""
    if daily_tokens is None and not from_ledger:
        fail("give --daily-tokens (e.g. 500k,5M,20M) or --from-ledger")
    if chart is not None and chart.suffix.lower() not in CHART_FORMATS:
        fail(f"--chart writes .svg or .png files (got {chart.name})")
    volumes = checked(lambda: parse_volumes(daily_tokens)) if daily_tokens is not None else []
    server = None
    if measure is not None:
        if throughput_tps is not None:
            fail("give --measure or --throughput-tps, not both")
        if gpu_hourly is None:
            fail("--measure needs --gpu-hourly: the hourly price of the machine that server runs on")
        plan = checked(
            lambda: LoadPlan(
                concurrency=_levels(measure_concurrency),
                requests=measure_requests,
                max_tokens=measure_max_tokens,
                budget_s=measure_budget_s,
                model=measure_model,
            )
        )
        server = _measure(measure, plan, measure_key_env)
        throughput_tps = server.best.output_tps
    workload = ledger_workload(config, ledger, days) if from_ledger else None
    if from_ledger and workload is None:
        fail(f"no data: the ledger has no requests{'' if days is None else f' in the last {days:g} days'}", 1)
    price, price_source = _price(blended_price, model, provider, input_share, workload)
    share, share_source = _local_share(local_share, workload)
    embed = workload.embeddings if workload else None
    embed_tokens, embed_source = (
        (embed_daily_tokens, "given")
        if embed_daily_tokens is not None
        else (str(embed.daily_tokens), "ledger")
        if embed
        else ("0", "none given")
    )
    embed_usd, embed_price_source = (
        (embed_price, "given")
        if embed_price is not None
        else (embed.usd_per_mtok, "ledger")
        if embed and embed.usd_per_mtok is not None
        else (DEFAULT_EMBED_PRICE, "assumed (text-embedding-3-small)")
    )

    measured = workload.overhead if workload else None
    extra, overhead_source = (
        (overhead, "given")
        if overhead is not None
        else (measured.share, _overhead_source(measured))
        if measured is not None
        else (0.0, "none given; pass --overhead or --from-ledger")
    )

    def assumptions() -> Assumptions:
        node = customise(
            get_profile(profile),
            hourly_usd=gpu_hourly,
            throughput_tps=throughput_tps,
            utilisation=utilisation,
            platform_overhead=platform_overhead,
        )
        return Assumptions(
            api_usd_per_mtok=price,
            profile=node,
            people=People(people_fte, fte_yearly_usd),
            selfhost_monthly_usd=selfhost_monthly,
            local_share=share,
            overhead=extra,
            embed_daily_tokens=parse_tokens(embed_tokens),
            embed_usd_per_mtok=embed_usd,
        )

    a = checked(assumptions)
    sources = {
        "price": price_source,
        "local_share": share_source,
        "embed_daily_tokens": embed_source,
        "embed_price": embed_price_source,
        "overhead": overhead_source,
        "people": f"{people_fte:g} FTE at ${fte_yearly_usd:,.0f}/year",
        "throughput": _throughput_source(server, given=throughput_tps is not None),
    }
    report = checked(
        lambda: build_report(
            volumes, a, workload=workload, sources=sources, server=server.to_dict() if server else None
        )
    )
    if chart is not None:
        plotted = volumes + ([workload.daily_tokens] if workload else [])
        if chart.suffix.lower() == ".png":
            chart.write_bytes(checked(lambda: render_png(plotted, a)))
        else:
            chart.write_text(checked(lambda: render_svg(plotted, a)))
        typer.echo(f"wrote {chart}", err=True)  # stderr, so --json/--csv output stays parseable
    typer.echo(
        render_json(report) if json_output else render_csv(report) if csv_output else render_table(report)
    )


def _measure(url: str, plan: LoadPlan, key_env: str | None) -> ServerThroughput:
    """The load test, with progress on stderr; a bad URL is exit 2, a server that failed exit 1."""
    checked(lambda: base_url(url))
    key = None
    if key_env is not None:
        key = os.environ.get(key_env)
        if not key:
            fail(f"--measure-key-env names {key_env}, which is not set")
    typer.echo(
        f"measuring {url}: {plan.requests} requests at each concurrency "
        f"{', '.join(map(str, plan.concurrency))} (at most {plan.budget_s:g} s)",
        err=True,
    )
    try:
        return measure_server(url, plan, key)
    except MeasureError as exc:
        fail(str(exc), 1)


def _levels(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--measure-concurrency takes whole numbers, e.g. 1,2,4; got '{text}'") from None


def _throughput_source(server: ServerThroughput | None, *, given: bool) -> str:
    if server is not None:
        best = server.best
        return f"measured at {server.url}: output tokens/s at concurrency {best.concurrency}"
    return "given" if given else "profile"


def _overhead_source(o: Overhead) -> str:
    parts = [f"{cls} {tokens:,} tokens" for cls, tokens in sorted(o.by_class.items())]
    parts.append(f"escalations wasted {o.wasted_tokens:,} tokens")
    return "ledger: " + ", ".join(parts)


def _local_share(given: float | None, w: Workload | None) -> tuple[float, str]:
    if given is not None:
        return given, "given"
    if w is not None:
        return w.local_share, "ledger"
    return DEFAULT_LOCAL_SHARE, "assumed; pass --local-share or --from-ledger"
