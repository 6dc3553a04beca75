"""A real gateway process whose route ``auto`` runs the embedded backend (SmolLM2 via llama.cpp),
for the tests and benches that attack it: the gateway and its engine process are real, the
model is the packaged GGUF, and nothing is a stand-in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.gateway_process import GatewayProcess, run_gateway


def embedded_config(ledger: Path, *, n_ctx: int = 1024, extra: str = "") -> str:
    return f"""environment = "test"
[ledger]
path = "{ledger}"
flush_interval_s = 0.05
[backends.local]
type = "embedded"
n_ctx = {n_ctx}
default_max_tokens = 8
load_at_startup = true
timeout_s = 120
max_queue = 64
{extra}
[routes.auto]
try = ["local"]
"""


@contextmanager
def run_embedded_gateway(workdir: Path, *, extra: str = "") -> Iterator[GatewayProcess]:
    with run_gateway(
        embedded_config(workdir / "ledger.db", extra=extra), workdir, start_timeout_s=120
    ) as gateway:
        yield gateway


ENGINE_MODULE = b"hybridgate.backends.embedded.engine"


def engine_pids(parent: int) -> list[int]:
    """The embedded engine processes the gateway ``parent`` started: its children running the
    engine module (not its other children, such as the ledger's writer process)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == parent and fields[0] != "Z" and ENGINE_MODULE in command:
            found.append(int(stat.parent.name))
    return sorted(found)


def healthz_ms(client: httpx.Client) -> float:
    """How long ``/healthz`` took to answer 200, in milliseconds."""
    response = client.get("/healthz")
    assert response.status_code == 200, response.text
    return response.elapsed.total_seconds() * 1000
