"""backends/http.py: the session the cloud backends share, and the proxy the environment names."""

from __future__ import annotations

import aiohttp
import pytest

from hybridgate.backends.http import env_proxy, open_session


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_no_proxy_configured(no_proxy_env: pytest.MonkeyPatch) -> None:
    assert env_proxy("https://api.openai.com/v1/chat/completions") is None


def test_proxy_by_scheme_and_bypass(no_proxy_env: pytest.MonkeyPatch) -> None:
    no_proxy_env.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    no_proxy_env.setenv("NO_PROXY", "localhost,.corp.example")
    assert env_proxy("https://api.anthropic.com/v1/messages") == "http://proxy.internal:3128"
    assert env_proxy("http://vllm.corp.example/v1/chat/completions") is None
    assert env_proxy("http://other.example/v1") is None  # only HTTPS_PROXY is set


def test_all_proxy_covers_every_scheme(no_proxy_env: pytest.MonkeyPatch) -> None:
    no_proxy_env.setenv("ALL_PROXY", "http://proxy.internal:3128")
    assert env_proxy("http://10.0.0.5:8000/v1/chat/completions") == "http://proxy.internal:3128"


async def test_session_pool_and_timeouts() -> None:
    session = open_session({"x-api-key": "k"}, timeout_s=7.0, max_connections=3)
    try:
        assert session.timeout == aiohttp.ClientTimeout(total=None, connect=7.0, sock_read=7.0)
        assert isinstance(session.connector, aiohttp.TCPConnector)
        assert session.connector.limit == 3
        assert session.headers["x-api-key"] == "k"
    finally:
        await session.close()
