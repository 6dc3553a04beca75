"""A tiny Chrome DevTools Protocol client, to drive headless Chromium through a page as a user would.

Test helper: launches Debian's Chromium with ``--remote-debugging-port=0`` (the port it picked is
read from ``DevToolsActivePort`` in its profile folder), attaches to the page over a websocket and
runs JavaScript in it. Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect
from websockets.sync.connection import Connection

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1280,1500", "--remote-debugging-port=0", "--remote-allow-origins=*",
)  # fmt: skip


class Page:
    """One browser tab: ``evaluate`` JavaScript, ``wait_for`` a condition, ``screenshot``."""

    def __init__(self, ws: Connection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._ws.recv(timeout=30))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def _holds(self, expression: str) -> bool:
        """Whether ``expression`` is truthy; one that throws (the document is still loading, its
        body not there yet) is not yet true."""
        try:
            return bool(self.evaluate(expression))
        except RuntimeError:
            return False

    def wait_for(self, expression: str, timeout_s: float = 20.0) -> None:
        """Poll ``expression`` until it is truthy; fail with the page's state after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not self._holds(expression):
            if time.monotonic() > deadline:
                state = self.evaluate("document.body && document.body.dataset.state")
                raise AssertionError(f"timed out waiting for {expression} (page state {state!r})")
            time.sleep(0.1)

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(data)
        return data


@contextmanager
def browser_page(url: str, profile: Path) -> Iterator[Page]:
    """Chromium showing ``url`` in one tab, closed on exit."""
    assert shutil.which("chromium"), "chromium is not installed: run scripts/deps/chromium.sh"
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.monotonic() < deadline and proc.poll() is None, "chromium did not start"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        target = next(t for t in targets if t["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as ws:
            yield Page(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
