"""A real ``redis-server`` (Debian's package, scripts/deps/redis.sh) on loopback, for tests.

``RedisServer`` runs one in a temporary directory on a free 127.0.0.1 port with persistence
off (``--save "" --appendonly no``): ``start()`` waits until it answers PING, ``stop()`` kills
it, and ``start()`` again brings it back empty on the same port and URL, for "Redis died
mid-load" tests. ``running_redis()`` is the context manager most tests want: it yields a
started server and stops it however the test ends.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from tests.gateway_process import free_port

START_TIMEOUT_S = 10.0


class RedisServer:
    """One redis-server child process; ``url`` stays the same across stop/start."""

    def __init__(self, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run scripts/deps/redis.sh")
        self._binary = binary
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = Path(tempfile.mkdtemp(prefix="hybridgate-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        command = [
            self._binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self._dir),
            "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no",
            "--logfile", str(self._dir / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self._wait_for_ping()

    def stop(self) -> None:
        """Kill the server (SIGKILL: an outage, not a shutdown) and wait until the port is free."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(timeout=10)
        self._process = None

    def pause(self) -> None:
        """SIGSTOP the server: a hung Redis (connections accepted by the kernel, never answered)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def log(self) -> str:
        path = self._dir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _wait_for_ping(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}:\n{self.log()}")
            if self._pong():
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer PING in {START_TIMEOUT_S}s:\n{self.log()}")

    def _pong(self) -> bool:
        try:
            with closing(socket.create_connection(("127.0.0.1", self.port), timeout=0.5)) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


@contextmanager
def running_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.close()
