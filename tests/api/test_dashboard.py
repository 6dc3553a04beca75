"""The /ui dashboard: its JSON endpoints over a pre-filled ledger, and the page in a real browser.

The gateway is the real app served by uvicorn on 127.0.0.1; the browser is Debian's headless
Chromium (install it with scripts/deps/chromium.sh). No upstream is called: the ledger is
written beforehand through SqliteLedger, as the gateway would have written it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.tco.model import Assumptions, api_monthly
from hybridgate.tco.profiles import get_profile
from hybridgate.tco.projection import DASHBOARD_ROUTES, dashboard_routes
from tests.servers import serve_in_thread
from tests.tco.ledger_fixture import Traffic, config_for, fill_ledger

CHROMIUM = "/usr/bin/chromium"


def dashboard_app(config: GatewayConfig) -> Starlette:
    app = create_app(config, env={})
    if not any(getattr(route, "path", None) == "/ui" for route in app.routes):
        app.router.routes.extend(DASHBOARD_ROUTES)  # as app.py mounts them
    return app


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Traffic]]:
    db = tmp_path_factory.mktemp("dash") / "ledger.db"
    traffic = fill_ledger(db)
    with serve_in_thread(dashboard_app(config_for(db))) as url:
        yield url, traffic


def test_summary_counts_decisions_escalations_cache_and_latency(filled: tuple[str, Traffic]) -> None:
    url, traffic = filled
    body = httpx.get(f"{url}/ui/api/summary?days=7").json()
    assert body["requests"] == traffic.requests
    assert body["by_rule"] == {"default": 24, "long-prompt": 24}
    assert body["escalated"] == traffic.escalated and body["check_failed"] == traffic.escalated
    assert body["cache_hit_rate"] == traffic.cache_hits / traffic.cache_lookups
    assert body["latency"]["p50_ms"] == pytest.approx(1400.0)  # halfway between 800 and 2000 ms
    assert body["latency"]["p99_ms"] == 2000.0


@pytest.mark.parametrize(("by", "groups"), [("route", {"auto", "frontier"}), ("cohort", {"beta", None})])
def test_usage_and_timeseries_by_group(filled: tuple[str, Traffic], by: str, groups: set[str | None]) -> None:
    url, traffic = filled
    usage = httpx.get(f"{url}/ui/api/usage", params={"by": by, "days": 7}).json()
    assert {row[by] for row in usage["rows"]} == groups
    assert sum(row["cost_usd"] for row in usage["rows"]) == pytest.approx(traffic.cost_usd)
    series = httpx.get(f"{url}/ui/api/timeseries", params={"by": by, "days": 7}).json()["rows"]
    assert len({row["day"] for row in series}) in (
        4,
        5,
    )  # four days of traffic (five if one straddles UTC midnight)
    assert sum(row["prompt_tokens"] for row in series) == traffic.prompt_tokens


def test_projection_uses_the_measured_volume_price_and_split(filled: tuple[str, Traffic]) -> None:
    url, traffic = filled
    body = httpx.get(f"{url}/ui/api/projection?days=7").json()
    measured = body["measured"]
    assert measured["requests"] == traffic.requests
    a = Assumptions(api_usd_per_mtok=7.5, profile=get_profile("l4"), selfhost_monthly_usd=8000.0)
    assert body["rows"][0]["api_monthly_usd"] == round(api_monthly(measured["daily_tokens"], a), 2)
    assert body["break_even_daily_tokens"] == round(8000 / (7.5e-6 * 30), 2)
    assert body["assumptions"]["sources"]["price"].startswith("ledger")
    given = httpx.get(f"{url}/ui/api/projection?days=7&blended_price=8&selfhost_monthly=4000").json()
    assert given["break_even_daily_tokens"] == round(4000 / (8e-6 * 30), 2)
    svg = httpx.get(f"{url}/ui/api/projection.svg?days=7")
    assert svg.headers["content-type"].startswith("image/svg+xml") and 'id="break-even"' in svg.text


@pytest.mark.parametrize(
    "query",
    [
        "usage?by=colour",
        "summary?days=-1",
        "summary?days=0",
        "projection?blended_price=cheap",
        "projection?profile=v100",
    ],
)
def test_bad_parameters_are_400_with_a_message(filled: tuple[str, Traffic], query: str) -> None:
    reply = httpx.get(f"{filled[0]}/ui/api/{query}")
    assert reply.status_code == 400
    assert reply.json()["error"]["message"]


def test_no_ledger_yet_is_explicitly_no_data(tmp_path: Path) -> None:
    with serve_in_thread(dashboard_app(config_for(tmp_path / "never-written.db"))) as url:
        assert httpx.get(f"{url}/ui/api/projection").json()["no_data"] == "no requests in the last 7 days"
        summary = httpx.get(f"{url}/ui/api/summary").json()
        assert summary["requests"] == 0 and summary["cache_hit_rate"] is None
        assert httpx.get(f"{url}/ui/api/usage").json()["rows"] == []
        assert httpx.get(f"{url}/ui/api/projection.svg").status_code == 400


def test_guard_hook_refuses_before_any_handler_runs(tmp_path: Path) -> None:
    async def admin_only(request: Request) -> Response | None:
        if request.headers.get("authorization") == "Bearer admin":
            return None
        return PlainTextResponse("admin key required", status_code=401)

    app = create_app(config_for(tmp_path / "ledger.db"), env={})
    app.router.routes[:0] = dashboard_routes(admin_only)
    with serve_in_thread(app) as url:
        # The page is static and signs in by itself; every data endpoint is guarded.
        assert httpx.get(f"{url}/ui").status_code == 200
        assert httpx.get(f"{url}/ui/api/summary").status_code == 401
        assert httpx.get(f"{url}/ui/api/requests.csv").status_code == 401
        allowed = httpx.get(f"{url}/ui/api/summary", headers={"authorization": "Bearer admin"})
        assert allowed.status_code == 200


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert shutil.which("chromium"), "chromium is not installed: run scripts/deps/chromium.sh"
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,1500",
        # Lets the page's fetches finish before the DOM is dumped or the screenshot taken.
        "--virtual-time-budget=10000",
    ]  # fmt: skip
    done = subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_page_renders_totals_in_a_real_browser(filled: tuple[str, Traffic], tmp_path: Path) -> None:
    url, traffic = filled
    dom = chromium(tmp_path, "--dump-dom", f"{url}/ui").stdout
    assert 'data-state="ready"' in dom, dom[-3000:]
    # Totals the page's JavaScript summed from the JSON rows.
    assert f'id="total-requests">{traffic.requests}<' in dom
    assert f'id="total-tokens">{traffic.prompt_tokens + traffic.completion_tokens:,}<' in dom
    assert f'id="total-spend">${traffic.cost_usd:.2f}<' in dom  # $0.18, not $0.1800
    assert 'id="cache-hit-rate">50.0%<' in dom
    for name in ("frontier", "auto", "long-prompt", "break-even"):
        assert name in dom
    shot = tmp_path / "dashboard.png"
    chromium(tmp_path, f"--screenshot={shot}", f"{url}/ui")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_page_with_an_empty_ledger_says_no_data(tmp_path: Path) -> None:
    with serve_in_thread(dashboard_app(config_for(tmp_path / "empty.db"))) as url:
        dom = chromium(tmp_path, "--dump-dom", f"{url}/ui").stdout
    assert 'data-state="ready"' in dom
    assert "no requests in this period" in dom and 'id="projection-none"' in dom
    assert 'id="total-requests">0<' in dom


def test_page_grouped_by_api_shows_embeddings_beside_chat(tmp_path: Path) -> None:
    from hybridgate.ledger.records import LedgerRecord
    from hybridgate.ledger.store import SqliteLedger

    db = tmp_path / "ledger.db"
    traffic = fill_ledger(db)
    store = SqliteLedger(str(db))
    store.start()
    store.record(
        LedgerRecord(
            ts=time.time() - 60, request_id="emb", api="embeddings", environment="test", route="docs",
            backend="wl", model="wordllama-l2-supercat-256", prompt_tokens=900, texts=40, cached_texts=30,
        )
    )  # fmt: skip
    store.close()
    with serve_in_thread(dashboard_app(config_for(db))) as url:
        rows = httpx.get(f"{url}/ui/api/usage?by=api&days=7").json()["rows"]
        assert {r["api"]: r["requests"] for r in rows} == {"openai": traffic.requests, "embeddings": 1}
        dom = chromium(tmp_path, "--dump-dom", f"{url}/ui?by=api").stdout
    assert 'data-state="ready"' in dom, dom[-3000:]
    assert "Usage by api" in dom and "texts embedded" in dom and "<td>75.0%</td>" in dom
