"""The ``hybridgate bench`` commands, added to the CLI's ``bench`` group by ``register``."""

from __future__ import annotations

import typer


def register(bench: typer.Typer) -> None:
    """Add ``pii``, ``router`` and ``cache`` to ``bench``; each imports its work only when run."""
    from hybridgate_bench.cache_command import cache
    from hybridgate_bench.pii_command import pii
    from hybridgate_bench.router_command import bench_router

    bench.command("pii")(pii)
    bench.command("router")(bench_router)
    bench.command("cache")(cache)
