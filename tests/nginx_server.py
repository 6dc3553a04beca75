"""The shipped nginx config (deploy/nginx/nginx.conf), run as is by Debian's nginx on loopback.

``run_nginx`` copies ``nginx.conf`` byte for byte into a temporary prefix and writes the two files
it includes with loopback values: ``listen.conf`` (a free 127.0.0.1 port) and ``upstream.conf``
(one ``server 127.0.0.1:PORT`` line per replica, with the shipped ``max_fails``/``fail_timeout``
but without ``resolve``, which needs nginx 1.27.3 and a name; Debian bookworm has 1.22). Everything
else, keep-alive, retries, error pages, is the file deployments run. scripts/deps/nginx.sh
installs nginx.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.gateway_process import REPO, free_port

SHIPPED = REPO / "deploy" / "nginx"


@dataclass
class NginxServer:
    url: str
    prefix: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


def loopback_upstreams(ports: Sequence[int]) -> str:
    """upstream.conf for replicas on loopback: the shipped lines' parameters, minus `resolve`."""
    shipped = re.findall(r"^server \S+ (.+);$", (SHIPPED / "upstream.conf").read_text(), re.M)
    parameters = shipped[0].replace("resolve ", "")
    return "".join(f"server 127.0.0.1:{port} {parameters};\n" for port in ports)


@contextmanager
def run_nginx(replica_ports: Sequence[int]) -> Iterator[NginxServer]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    prefix = Path(tempfile.mkdtemp(prefix="hybridgate-nginx-"))
    shutil.copyfile(SHIPPED / "nginx.conf", prefix / "nginx.conf")
    port = free_port()
    (prefix / "listen.conf").write_text(f"listen 127.0.0.1:{port};\n")
    (prefix / "upstream.conf").write_text(loopback_upstreams(replica_ports))
    directives = f"daemon off; master_process on; pid {prefix}/nginx.pid;"
    command = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")]
    command += ["-g", directives]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    server = NginxServer(f"http://127.0.0.1:{port}", prefix, process)
    try:
        _wait_listening(server, port)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()  # SIGTERM: fast shutdown
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(prefix, ignore_errors=True)


def _wait_listening(server: NginxServer, port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"nginx exited with {server.process.returncode}:\n{server.log()}")
        try:
            with closing(socket.create_connection(("127.0.0.1", port), timeout=0.5)):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen in 10s:\n{server.log()}")


def established_to(ports: Sequence[int]) -> int:
    """TCP connections in ESTABLISHED state whose remote end is one of ``ports`` on loopback
    (here: nginx's idle keep-alive connections to the replicas), from /proc/net/tcp."""
    wanted = {f"{port:04X}" for port in ports}
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and fields[2].split(":")[1] in wanted:
            count += 1
    return count
