"""The pooled HTTP client the cloud backends (openai_compat, anthropic) send requests with.

Step 3 of the flow, below the backends: one aiohttp ``ClientSession`` per backend, built here so
both backends get the same pool, timeouts and proxy handling. aiohttp rather than httpx because it
costs a third of the CPU per request (docs/benchmarks.md, "Gateway overhead"). This module only
builds clients; it must not send requests, translate errors or know any wire format.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Mapping

import aiohttp

# An idle pooled connection is dropped after this long, as httpx did: servers close idle
# keep-alive connections after 5-15 s, and reusing one the server is closing fails the request.
KEEPALIVE_S = 5.0

__all__ = ["KEEPALIVE_S", "Pool", "env_proxy", "open_session"]


class Pool:
    """One backend's session, opened on first use (inside the event loop) and closed by aclose()."""

    def __init__(self, headers: Mapping[str, str], timeout_s: float, max_connections: int) -> None:
        self._args = (dict(headers), timeout_s, max_connections)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = open_session(*self._args)
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def open_session(headers: Mapping[str, str], timeout_s: float, max_connections: int) -> aiohttp.ClientSession:
    """A session with ``max_connections`` pooled connections; call it inside the event loop.

    ``timeout_s`` bounds connecting (including the wait for a free pooled connection) and each
    wait for data, not the whole answer: a long stream that keeps sending never times out.
    """
    timeout = aiohttp.ClientTimeout(total=None, connect=timeout_s, sock_read=timeout_s)
    connector = aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=KEEPALIVE_S)
    return aiohttp.ClientSession(headers=dict(headers), timeout=timeout, connector=connector)


def env_proxy(url: str) -> str | None:
    """The proxy that ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` name for ``url``, unless ``NO_PROXY``
    exempts its host.

    Looked up once per backend, since its URL is fixed: aiohttp's own ``trust_env`` would read
    the environment (and ``~/.netrc``) again on every request.
    """
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies()
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return proxies.get(parts.scheme) or proxies.get("all")
