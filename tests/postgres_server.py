"""A throwaway real PostgreSQL server on 127.0.0.1, for the ledger tests.

Debian's server binaries (scripts/deps/postgres.sh) run a fresh cluster in a temporary data
directory on a free port, trust auth on loopback only, no Unix socket, and fsync off: fast to start
and thrown away afterwards. ``initdb`` refuses to run as root, so as root the server runs as the
``postgres`` OS user, which owns the data directory. ``stop()``/``start()`` keep the port and the
data, so a test can take the ledger's store away mid-load and bring it back; ``kill()`` is the
SIGKILL version of ``stop()``.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import asyncpg

from tests.gateway_process import free_port

DATABASE = "hybridgate"
# fsync off is safe for tests that kill the server, not the machine: a killed process leaves its
# writes in the OS cache. synchronous_commit stays on, or a SIGKILL could undo acknowledged commits.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "40",
}


def bin_dir() -> Path:
    """Where Debian put ``initdb`` and ``postgres`` (the newest version if several)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found: run scripts/deps/postgres.sh")
    return Path(found[-1]).parent


def memory_dir() -> str | None:
    """``/dev/shm`` where it is writable (a tmpfs: initdb, a copy of the template and each CREATE
    DATABASE are 4-5x faster there than on this machine's disk), else the default temp directory."""
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


class PostgresServer:
    """One cluster, one database; ``dsn`` connects as the superuser over TCP."""

    def __init__(self) -> None:
        self.bin = bin_dir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="hybridgate-pg-", dir=memory_dir()))
        self.data = self.root / "data"
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as_owner = ["runuser", "-u", "postgres", "--"]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def init(self, template: Path | None = None) -> None:
        """A new cluster with an empty ``hybridgate`` database, started. ``template``: the data
        directory of a cluster stopped cleanly (``make_template``), copied instead of running
        initdb again (most of a server's start-up time)."""
        if template is not None:
            self._run("cp", "-a", str(template), str(self.data))
            self.start()
            return
        self._run(self.bin / "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        self._run(self.bin / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", DATABASE)

    def start(self, timeout_s: float = 30.0) -> None:
        """Start (or restart) the server on the same port and data directory; wait until ready."""
        options = [arg for key, value in SETTINGS.items() for arg in ("-c", f"{key}={value}")]
        command = [*self._as_owner, str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        log = (self.root / "postgres.log").open("ab")
        with log:
            self.process = subprocess.Popen([*command, *options], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Fast shutdown (SIGINT): open connections are cut, committed data stays."""
        self._signal(signal.SIGINT)

    def kill(self) -> None:
        """SIGKILL the postmaster, then wait for its backends, which exit once they notice."""
        children = self._children()
        self._signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.05)

    def pause(self) -> None:
        """SIGSTOP the postmaster and its backends: a hung server. Connections are still accepted
        (by the kernel) and queries received, but nothing is ever answered until ``resume()``."""
        for pid in [p for p in [self._postmaster()] if p] + self._children():
            _send(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in [p for p in [self._postmaster()] if p] + self._children():
            _send(pid, signal.SIGCONT)
        if self.process is not None and self._as_owner:
            # runuser stops itself when its child stops (job control) and waits for a SIGCONT;
            # left stopped, it would never reap the server and every later stop would time out.
            _send(self.process.pid, signal.SIGCONT)

    def log(self) -> str:
        path = self.root / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _postmaster(self) -> int | None:
        pid_file = self.data / "postmaster.pid"
        return int(pid_file.read_text().split()[0]) if pid_file.exists() else None

    def _children(self) -> list[int]:
        pid = self._postmaster()
        found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
        return [int(child) for child in found.stdout.split()] if pid else []

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # The server's own pid, not runuser's: runuser cannot pass on a SIGKILL.
        pid = self._postmaster()
        if pid is not None:
            _send(pid, sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def _ready(self) -> bool:
        probe = [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(probe, check=False).returncode == 0

    def _run(self, *command: str | Path) -> None:
        done = subprocess.run([*self._as_owner, *map(str, command)], capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {done.stdout.decode()}{done.stderr.decode()}")

    def remove(self) -> None:
        """Immediate shutdown (SIGQUIT: no checkpoint, the data is thrown away), then delete it."""
        if self.process is not None and self.process.poll() is None:
            self.resume()  # a paused server would not see the signal
        self._signal(signal.SIGQUIT)
        shutil.rmtree(self.root, ignore_errors=True)


def _send(pid: int, sig: signal.Signals) -> None:
    """Signal ``pid`` unless it has exited meanwhile (a backend whose connection just closed)."""
    with suppress(ProcessLookupError):
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def run_postgres(template: Path | None = None) -> Iterator[PostgresServer]:
    """A fresh server with an empty ``hybridgate`` database (a copy of ``template`` if given);
    stopped and deleted afterwards."""
    server = PostgresServer()
    try:
        server.init(template)
        yield server
    finally:
        server.remove()


@contextmanager
def postgres_template() -> Iterator[Path]:
    """The data directory of a new cluster with an empty ``hybridgate`` database, shut down
    cleanly: ``run_postgres(template)`` copies it. Deleted afterwards."""
    server = PostgresServer()
    try:
        server.init()
        server.stop()  # a clean shutdown: the copy starts without recovery
        yield server.data
    finally:
        shutil.rmtree(server.root, ignore_errors=True)


def new_database(server: PostgresServer) -> str:
    """The DSN of a new, empty database on ``server``."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(execute(server.dsn, f"CREATE DATABASE {name}"))
    return server.dsn.rsplit("/", 1)[0] + f"/{name}"


def drop_database(server: PostgresServer, dsn: str) -> None:
    """Drop the database of ``dsn`` (made by ``new_database``), cutting any connection still open:
    the session's server would otherwise keep every test's ~11 MB in memory until the end."""
    name = dsn.rsplit("/", 1)[1]
    asyncio.run(execute(server.dsn, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def execute(dsn: str, sql: str, *args: object) -> str:
    """Run one statement on its own connection; its status line, e.g. "DELETE 3"."""
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.execute(sql, *args))
    finally:
        await conn.close()
