"""A stand-in upstream that answers every request with the same raw bytes, for tests.

Not any provider: a plain TCP listener on 127.0.0.1 that reads one HTTP request per connection,
records it, and writes back ``response`` exactly as given, then closes. It can say what no HTTP
framework would let a well-behaved server say (status 999, a redirect elsewhere, any header).
With the default empty response it is a canary: tests assert that nobody ever reached it.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RawUpstream", "http_response", "run_raw_upstream"]


def http_response(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """An HTTP/1.1 response with any status line, ``connection: close`` and a content-length."""
    lines = [f"HTTP/1.1 {status} Whatever"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines += [f"content-length: {len(body)}", "connection: close", "", ""]
    return "\r\n".join(lines).encode() + body


class RawUpstream:
    """What it answers (``response``, settable between requests) and what it was sent."""

    def __init__(self, response: bytes = b"") -> None:
        self.response = response
        self.requests: list[bytes] = []  # each request's head and body, as received
        self.base_url = ""
        self._lock = threading.Lock()

    def serve(self, conn: socket.socket) -> None:
        received = _read_request(conn)
        with self._lock:
            self.requests.append(received)
        if self.response:
            conn.sendall(self.response)


def _read_request(conn: socket.socket) -> bytes:
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        piece = conn.recv(65536)
        if not piece:
            break
        body += piece
    return head + b"\r\n\r\n" + body


@contextmanager
def run_raw_upstream(response: bytes = b"", path: str = "/v1") -> Iterator[RawUpstream]:
    """Serve a ``RawUpstream`` on a free loopback port; its ``base_url`` ends in ``path``."""
    upstream = RawUpstream(response)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            upstream.serve(self.request)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    upstream.base_url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
