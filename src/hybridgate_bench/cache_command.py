"""``hybridgate bench cache``: parse options -> ``cache.bench.bench_cache`` -> print JSON or a summary.

Registered by cli.py under the ``bench`` group (``bench.command("cache")(cache)``). Offline: it
reads the labelled pairs named by ``--data`` and builds its own matcher (WordLlama, the router's
embedder) and index; it never starts the gateway. Bad input (missing file, malformed pairs,
no wordllama package) exits 2.
"""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Annotated, Any

import typer

from hybridgate.commands.console import fail
from hybridgate.errors import ConfigError

DEFAULT_DATA = Path("../shared/data/cache/qqp_pairs.jsonl.gz")


def cache(
    data: Annotated[
        Path, typer.Option(help="JSON lines {text_a, text_b, label}, optionally gzipped")
    ] = DEFAULT_DATA,
    threshold: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="similarity threshold (default: the matcher's)")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=2, help="use only this many pairs")] = None,
    hard_negatives: Annotated[
        Path | None,
        typer.Option(
            help="near-miss pairs by category, e.g. tests/hybridgate_bench/data/hard_negatives.jsonl"
        ),
    ] = None,
    entries: Annotated[int, typer.Option(min=1, help="index size for the latency run")] = 100_000,
    queries: Annotated[int, typer.Option(min=1, help="lookups timed")] = 2000,
    redis_url: Annotated[
        str | None,
        typer.Option(help="also time the Redis store on this server (keys prefixed hybridgate-bench:)"),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="print the full report as JSON")] = False,
) -> None:
    """Semantic cache: precision/recall/false hits on labelled pairs, lookup and embed latency."""
    from hybridgate.cache.semantic import DEFAULT_THRESHOLD, SemanticMatcher
    from hybridgate.embedder import WordLlamaEmbedder
    from hybridgate_bench.cache import bench_cache

    try:
        matcher = SemanticMatcher(WordLlamaEmbedder(), DEFAULT_THRESHOLD if threshold is None else threshold)
        report = bench_cache(
            data,
            matcher,
            limit=limit,
            hard_negatives_path=hard_negatives,
            entries=entries,
            queries=queries,
            redis_url=redis_url,
        )
    except ConfigError as exc:
        fail(exc.message)
    except (OSError, ValueError) as exc:
        fail(str(exc))
    typer.echo(jsonlib.dumps(report, indent=2) if json else render(report))


def render(report: dict[str, Any]) -> str:
    from hybridgate_bench.cache_stores import describe

    """A few lines for a terminal: the operating point, the curve, the latency."""
    ref = report["reference"]
    lines = [
        f"{report['pairs']} pairs (the whole file), threshold {report['threshold']}: precision "
        f"{report['precision']:.3f}, recall {report['recall']:.3f}, false hits {report['false_hit_rate']:.4f}"
        f" (plain cosine: {ref['precision']:.3f} / {ref['recall']:.3f} / {ref['false_hit_rate']:.4f})",
        f"{'threshold':>10}{'precision':>10}{'recall':>8}{'plain P':>9}{'plain R':>9}",
    ]
    for (t, p, r), (_, pp, pr) in zip(report["curve"], ref["curve"], strict=True):
        lines.append(f"{t:>10.2f}{p:>10.3f}{r:>8.3f}{pp:>9.3f}{pr:>9.3f}")
    if (hard := report.get("hard_negatives")) is not None:
        categories = ", ".join(f"{name} {c['hits']}/{c['pairs']}" for name, c in hard["by_category"].items())
        lines.append(
            f"hard negatives: false hits {hard['false_hit_rate']:.4f} (plain cosine "
            f"{hard['false_hit_rate_plain_cosine']:.4f}), paraphrase recall {hard['paraphrase_recall']:.3f}; "
            f"hits by category: {categories}"
        )
    lines.append(
        f"lookup at {report['entries']} entries: {describe(report)}; embed p50 {report['embed_p50_ms']} ms "
        f"(load average {report['load_average_1m']} on {report['cpus']} CPUs)"
    )
    return "\n".join(lines)
