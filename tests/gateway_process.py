"""Run ``python -m hybridgate serve`` as a real child process, for tests (and benches) that need
signals, process exit and memory of their own: SIGTERM drain, soak RSS, fault injection.

The child is the real CLI with a config file written to a temporary directory; it binds
127.0.0.1 only. It runs in its own session and is stopped by its own pid, SIGKILL only if it
ignores SIGTERM, so a failed test leaves nothing behind.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def upstream_config(upstream_url: str, ledger: Path, *, timeout_s: float = 30.0) -> str:
    """A config with one OpenAI-compatible backend ``up`` behind route ``auto``."""
    return f"""environment = "test"
[ledger]
path = "{ledger}"
flush_interval_s = 0.05
[backends.up]
type = "openai_compat"
base_url = "{upstream_url}"
model = "gpt-4o-mini"
api_key_env = "UP_KEY"
provider = "openai"
timeout_s = {timeout_s}
[routes.auto]
try = ["up"]
"""


@dataclass
class GatewayProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    health_url: str | None = None  # [server] health_port: /livez, /readyz, /healthz there

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kb(self) -> int:
        """Resident memory now (VmRSS from /proc), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout=timeout_s)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def ledger_rows(path: Path) -> list[tuple[str, int, str | None]]:
    """``(request_id, status, error_type)`` of every ledger row, oldest first."""
    with closing(sqlite3.connect(path)) as conn:
        query = "SELECT request_id, status, error_type FROM requests ORDER BY id"
        return [(str(r[0]), int(r[1]), r[2]) for r in conn.execute(query)]


@contextmanager
def run_gateway(
    config_text: str,
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    start_timeout_s: float = 60.0,
    src: Path = REPO / "src",
    port: int | None = None,
    health_port: int | None = None,
) -> Iterator[GatewayProcess]:
    """Write the config into ``workdir``, start the gateway on ``port`` (a free one by default),
    wait for /healthz. ``src`` is the source tree it runs (benches compare another checkout's).
    With ``health_port`` (the config's ``[server] health_port``), wait for /livez there instead:
    the serving port opens only once the replica is ready."""
    config = workdir / "hybridgate.toml"
    config.write_text(config_text)
    port = port or free_port()
    log = workdir / "gateway.log"
    child_env = {**os.environ, "UP_KEY": "sk-up", "HYBRIDGATE_HMAC_SECRET": "test-secret", **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), child_env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "hybridgate", "serve", "--config", str(config), "--port", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, *args], stdout=sink, stderr=subprocess.STDOUT, env=child_env, start_new_session=True
        )
    gateway = GatewayProcess(f"http://127.0.0.1:{port}", process, log)
    if health_port is not None:
        gateway.health_url = f"http://127.0.0.1:{health_port}"
    try:
        _wait_healthy(gateway, start_timeout_s)
        yield gateway
    finally:
        _stop(process)


def _wait_healthy(gateway: GatewayProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise RuntimeError(f"gateway exited with {gateway.process.returncode}:\n{gateway.output()}")
        try:
            probe = f"{gateway.health_url}/livez" if gateway.health_url else f"{gateway.url}/healthz"
            if httpx.get(probe, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"gateway did not become healthy in {timeout_s}s:\n{gateway.output()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
