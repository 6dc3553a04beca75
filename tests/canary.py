"""An SSRF canary: a loopback listener that records every connection made to it.

Hostile requests name its URL (a ``$ref``, a media URL); the gateway must never connect. It
accepts and closes at once, so a gateway that does fetch fails fast instead of hanging.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field


@dataclass
class Canary:
    url: str
    hits: list[tuple[str, int]] = field(default_factory=list)


@contextmanager
def run_canary() -> Iterator[Canary]:
    with closing(socket.socket()) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        canary = Canary(f"http://127.0.0.1:{listener.getsockname()[1]}")
        stop = threading.Event()

        def accept() -> None:
            listener.settimeout(0.05)
            while not stop.is_set():
                try:
                    connection, peer = listener.accept()
                except TimeoutError:
                    continue
                canary.hits.append(peer)
                connection.close()

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            yield canary
        finally:
            stop.set()
            thread.join(timeout=5)
