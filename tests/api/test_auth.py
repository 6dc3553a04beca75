"""Virtual keys at the HTTP edge, through the official SDKs: 401s in each wire format, limits,
budgets, route restrictions, admin endpoints. The upstream is an OpenAI-compatible stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from starlette.applications import Starlette
from starlette.routing import Route

from hybridgate.app import create_app
from hybridgate.auth import MemoryLimiter, SqliteKeyStore
from hybridgate.config import GatewayConfig
from hybridgate.gateway import Gateway
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import run_openai_standin
from tests.waiting import wait_until

PEPPER = "test-pepper-0123456789"
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@dataclass
class AuthRig:
    url: str
    gateway: Gateway
    keys: SqliteKeyStore
    app: Starlette

    def client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRig]:
    folder: Path = tmp_path_factory.mktemp("auth")
    with run_openai_standin() as upstream:
        config = GatewayConfig.model_validate(
            {
                "environment": "prod",
                "ledger": {"path": str(folder / "gw.db")},
                "auth": {"enabled": True, "keys_path": str(folder / "keys.db")},
                "backends": {
                    "up": {
                        "type": "openai_compat",
                        "base_url": upstream.base_url,
                        "model": "m",
                        "price": {"input_per_mtok": 1000, "output_per_mtok": 1000},
                    }
                },
                "routes": {"auto": {"try": ["up"]}, "other": {"try": ["up"]}},
                "privacy": {"policy": "allow", "ner_model": None},
            }
        )
        app = create_app(config, env={"HYBRIDGATE_KEY_PEPPER": PEPPER})
        with serve_in_thread(app) as url:
            yield AuthRig(url, app.state.gateway, app.state.gateway.access.keys, app)


def test_missing_and_wrong_keys_get_401_in_each_wire_format(rig: AuthRig) -> None:
    with rig.client("not-a-key") as client, pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model="auto", messages=HI)
    assert isinstance(err.value.body, dict) and err.value.body["type"] == "authentication_error"
    with (
        anthropic.Anthropic(base_url=rig.url, api_key="hg-prod-wrong", max_retries=0) as claude,
        pytest.raises(anthropic.AuthenticationError) as aerr,
    ):
        claude.messages.create(model="auto", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert isinstance(aerr.value.body, dict) and aerr.value.body["error"]["type"] == "authentication_error"
    assert httpx.post(f"{rig.url}/v1/chat/completions", json={}).status_code == 401


def test_valid_key_is_served_recorded_and_told_its_limits(rig: AuthRig) -> None:
    key, record = rig.keys.create(environment="prod", name="app1", rpm=100)
    with rig.client(key) as client:
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=HI)
    assert raw.parse().choices[0].message.content == "echo: hi"
    assert raw.headers["x-ratelimit-limit-requests"] == "100"
    assert raw.headers["x-ratelimit-remaining-requests"] == "99"
    rig.gateway.ledger.flush()
    assert rig.gateway.ledger.recent(1)[0]["api_key_id"] == record.key_id


def test_key_of_another_environment_is_refused(rig: AuthRig) -> None:
    key, _ = rig.keys.create(environment="dev", name="laptop")
    with rig.client(key) as client, pytest.raises(openai.AuthenticationError, match="environment"):
        client.chat.completions.create(model="auto", messages=HI)


def test_revoked_key_is_refused(rig: AuthRig) -> None:
    key, record = rig.keys.create(environment="prod", name="gone")
    rig.keys.revoke(record.key_id)
    with rig.client(key) as client, pytest.raises(openai.AuthenticationError, match="revoked"):
        client.chat.completions.create(model="auto", messages=HI)


def test_rpm_limit_gives_exactly_n_then_429_with_retry_after(rig: AuthRig) -> None:
    key, _ = rig.keys.create(environment="prod", name="small", rpm=3)
    statuses = []
    with httpx.Client() as http:
        for _ in range(5):
            response = http.post(
                f"{rig.url}/v1/chat/completions",
                json={"model": "auto", "messages": HI},
                headers={"authorization": f"Bearer {key}"},
            )
            statuses.append(response.status_code)
    assert statuses == [200, 200, 200, 429, 429]
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


def test_daily_budget_stops_spending_within_one_request(rig: AuthRig) -> None:
    # 1000 $/Mtok makes each echo request cost about a cent
    key, _ = rig.keys.create(environment="prod", name="budget", budget_usd_day=0.001)
    with rig.client(key) as client:
        client.chat.completions.create(model="auto", messages=HI)
        with pytest.raises(openai.RateLimitError, match="budget") as err:
            for _ in range(5):
                client.chat.completions.create(model="auto", messages=HI)
    assert isinstance(err.value.body, dict) and err.value.body["code"] == "insufficient_quota"


def test_key_restricted_to_routes(rig: AuthRig) -> None:
    key, _ = rig.keys.create(environment="prod", name="narrow", routes=["other"])
    with rig.client(key) as client:
        client.chat.completions.create(model="other", messages=HI)
        with pytest.raises(openai.PermissionDeniedError, match="may not use route 'auto'"):
            client.chat.completions.create(model="auto", messages=HI)


def test_metrics_need_an_admin_key(rig: AuthRig) -> None:
    user_key, _ = rig.keys.create(environment="prod", name="user")
    admin_key, _ = rig.keys.create(environment="prod", name="ops", admin=True)
    assert httpx.get(f"{rig.url}/metrics").status_code == 401
    assert httpx.get(f"{rig.url}/metrics", headers={"authorization": f"Bearer {user_key}"}).status_code == 403
    ok = httpx.get(f"{rig.url}/metrics", headers={"authorization": f"Bearer {admin_key}"})
    assert ok.status_code == 200 and "hybridgate_requests_total" in ok.text
    assert httpx.get(f"{rig.url}/healthz").status_code == 200  # health stays open for load balancers


def test_a_keys_privacy_policy_applies_to_its_requests(rig: AuthRig) -> None:
    strict, _ = rig.keys.create(environment="prod", name="hr-app", privacy="local_only")
    relaxed, _ = rig.keys.create(environment="prod", name="chat-app")
    pii: list[ChatCompletionMessageParam] = [{"role": "user", "content": "mail ada@example.com"}]
    with rig.client(relaxed) as client:
        client.chat.completions.create(model="auto", messages=pii)  # the default policy allows it
    with rig.client(strict) as client, pytest.raises(openai.PermissionDeniedError, match="must stay local"):
        client.chat.completions.create(model="auto", messages=pii)  # the only backend is a cloud one


def v1_endpoints(app: Starlette) -> list[tuple[str, str]]:
    """(method, path) of every route under /v1, read from the app itself: a new one is covered too."""
    endpoints = []
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/v1/"):
            endpoints += [(method, route.path) for method in sorted(route.methods or ()) if method != "HEAD"]
    return endpoints


def test_every_v1_endpoint_needs_a_key_and_records_the_refusal(rig: AuthRig) -> None:
    endpoints = v1_endpoints(rig.app)
    assert ("GET", "/v1/models") in endpoints and ("POST", "/v1/messages/count_tokens") in endpoints
    key, _ = rig.keys.create(environment="prod", name="every-endpoint")
    body = {"model": "auto", "max_tokens": 5, "messages": HI}
    with httpx.Client(base_url=rig.url) as http:
        for n, (method, path) in enumerate(endpoints):
            request_id = f"nokey-{n}"
            json = body if method == "POST" else None
            refused = http.request(method, path, json=json, headers={"x-request-id": request_id})
            assert refused.status_code == 401, (method, path)
            error = refused.json()["error"]
            assert error["type"] == "authentication_error", (method, path)
            allowed = http.request(method, path, json=json, headers={"authorization": f"Bearer {key}"})
            # past the key: 200, or what the endpoint says of a chat body (embeddings: not configured)
            assert allowed.status_code not in (401, 403) and allowed.status_code < 500, (method, path)
            rig.gateway.ledger.flush()
            rows = [r["status"] for r in rig.gateway.ledger.recent(50) if r["request_id"] == request_id]
            assert rows == [401]


def test_model_list_and_token_count_through_the_sdks_need_a_key(rig: AuthRig) -> None:
    with rig.client("hg-prod-" + "M" * 43) as client, pytest.raises(openai.AuthenticationError):
        client.models.list()
    with (
        anthropic.Anthropic(base_url=rig.url, api_key="hg-prod-" + "C" * 43, max_retries=0) as claude,
        pytest.raises(anthropic.AuthenticationError),
    ):
        claude.messages.count_tokens(model="auto", messages=[{"role": "user", "content": "hi"}])
    key, _ = rig.keys.create(environment="prod", name="sdk-lists")
    with rig.client(key) as client:
        assert any(model.id == "auto" for model in client.models.list().data)


def made_up_key(n: int) -> str:
    """A well-formed key (hg-prod-<43 chars>) whose id no store holds."""
    return f"hg-prod-{n:08d}" + "x" * 35


def test_made_up_keys_create_no_limiter_state(rig: AuthRig) -> None:
    """A flood of requests with made-up keys: 401s, ledger rows, and no per-key state."""
    access = rig.gateway.access
    assert access is not None and isinstance(access.limiter, MemoryLimiter)
    limiter = access.limiter
    before = len(limiter)
    sent = 1500
    with httpx.Client() as http:
        for n in range(sent):
            key = made_up_key(n) if n % 3 else f"not-a-key-{n}"  # well-formed unknown ids and junk
            chat = {"model": "auto", "messages": HI}
            path, json = ("/v1/models", None) if n % 2 else ("/v1/chat/completions", chat)
            response = http.request(
                "GET" if json is None else "POST",
                f"{rig.url}{path}",
                json=json,
                headers={"authorization": f"Bearer {key}"},
            )
            assert response.status_code == 401
    assert len(limiter) == before  # no state for an identity nobody verified
    real, _ = rig.keys.create(environment="prod", name="after-flood", rpm=5)
    with rig.client(real) as client:
        client.chat.completions.create(model="auto", messages=HI)
    assert len(limiter) == before + 1  # a verified key does get its counts


def test_a_revocation_made_by_another_process_is_refused_within_key_cache_ttl_s(tmp_path: Path) -> None:
    """``[auth] key_cache_ttl_s``: how long a gateway trusts a key row it read. The revocation is
    made through a second store on the same file, as ``hybridgate keys revoke`` does."""
    ttl_s = 0.3
    with run_openai_standin() as upstream:
        config = GatewayConfig.model_validate(
            {
                "environment": "prod",
                "ledger": {"path": str(tmp_path / "gw.db")},
                "auth": {"enabled": True, "keys_path": str(tmp_path / "keys.db"), "key_cache_ttl_s": ttl_s},
                "backends": {"up": {"type": "openai_compat", "base_url": upstream.base_url, "model": "m"}},
                "routes": {"auto": {"try": ["up"]}},
                "privacy": {"policy": "allow", "ner_model": None},
            }
        )
        app = create_app(config, env={"HYBRIDGATE_KEY_PEPPER": PEPPER})
        cli = SqliteKeyStore(tmp_path / "keys.db", PEPPER.encode())
        key, record = cli.create(environment="prod", name="app")
        with (
            serve_in_thread(app) as url,
            openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as client,
        ):
            client.chat.completions.create(model="auto", messages=HI)  # the row is now cached
            cli.revoke(record.key_id)

            def refused() -> bool:
                try:
                    client.chat.completions.create(model="auto", messages=HI)
                except openai.AuthenticationError as exc:
                    return "revoked" in str(exc)
                return False

            assert wait_until(refused, timeout_s=5, what="the revocation") < ttl_s + 1.0
