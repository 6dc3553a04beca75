"""The dashboard's filters by cohort, environment and key, end to end, with auth on.

Real traffic: two virtual keys of environment ``prod`` call the real gateway (127.0.0.1) through the
official openai SDK with feature and cohort headers; the upstream is the OpenAI stand-in
(tests/standins: NOT OpenAI, a loopback server speaking its wire format). A second environment's
rows (``staging``, as another gateway sharing this ledger would write them) are written through
SqliteLedger beforehand. The JSON endpoints and the CSV export are checked over HTTP, and the page
in Debian's headless Chromium over the DevTools protocol (tests/api/cdp.py): sign in, fill in the
filters, apply, read the totals and the request log, export, screenshot.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.store import SqliteLedger
from tests.api.cdp import browser_page
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import run_openai_standin

PEPPER = "dashboard-filters-pepper"
STAGING_KEY_ID = "stg12345"


@dataclass(frozen=True)
class Rig:
    url: str
    admin_key: str
    key_a: str  # 3 chat requests, cohort beta
    key_b: str  # 2 chat requests, cohort gamma; 1 search request, cohort beta
    id_a: str
    id_b: str

    def get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(
            f"{self.url}{path}", params=params, headers={"authorization": f"Bearer {self.admin_key}"}
        )

    def rows(self, **params: str) -> list[dict[str, Any]]:
        reply = self.get("/ui/api/requests", **params)
        assert reply.status_code == 200, reply.text
        rows: list[dict[str, Any]] = reply.json()["rows"]
        return rows


def config(folder: Path, upstream: str) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "environment": "prod",
            "ledger": {"path": str(folder / "ledger.db"), "flush_interval_s": 0.05,
                       "cohort_labels": ["beta", "gamma"]},
            "auth": {"enabled": True, "keys_path": str(folder / "keys.db")},
            "backends": {"up": {"type": "openai_compat", "base_url": upstream, "model": "gpt-4o-mini",
                                "api_key_env": "UP_KEY", "timeout_s": 5}},
            "routes": {"auto": {"try": ["up"]}},
        }
    )  # fmt: skip


def staging_rows(ledger: Path) -> None:
    """Four live rows another environment's gateway wrote to this (shared) ledger."""
    store = SqliteLedger(str(ledger))
    store.start()
    for i in range(4):
        store.record(
            LedgerRecord(
                ts=time.time() - 300, request_id=f"stg-{i}", environment="staging", api_key_id=STAGING_KEY_ID,
                feature="chat", cohort="beta", route="auto", backend="up", model="gpt-4o-mini",
                prompt_tokens=10, completion_tokens=5,
            )
        )  # fmt: skip
    store.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    folder = tmp_path_factory.mktemp("dash-filters")
    staging_rows(folder / "ledger.db")
    with run_openai_standin(api_key="sk-up") as upstream:
        app = create_app(
            config(folder, upstream.base_url), env={"HYBRIDGATE_KEY_PEPPER": PEPPER, "UP_KEY": "sk-up"}
        )
        keys = app.state.gateway.access.keys
        admin_key, _ = keys.create(environment="prod", name="ops", admin=True)
        key_a, record_a = keys.create(environment="prod", name="app-a")
        key_b, record_b = keys.create(environment="prod", name="app-b")
        with serve_in_thread(app) as url:
            calls = (
                [(key_a, "chat", "beta")] * 3 + [(key_b, "chat", "gamma")] * 2 + [(key_b, "search", "beta")]
            )
            for key, feature, cohort in calls:
                with openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0) as client:
                    client.chat.completions.create(
                        model="auto", messages=[{"role": "user", "content": "hello"}],
                        extra_headers={"x-hybridgate-feature": feature, "x-hybridgate-cohort": cohort},
                    )  # fmt: skip
            app.state.gateway.ledger.flush()
            yield Rig(url, admin_key, key_a, key_b, record_a.key_id, record_b.key_id)


def test_filters_by_cohort_environment_and_key(rig: Rig) -> None:
    assert len(rig.rows()) == 10  # 6 through this gateway, 4 from staging
    gamma = rig.rows(cohort="gamma")
    assert len(gamma) == 2 and {r["api_key_id"] for r in gamma} == {rig.id_b}
    assert {r["api_key_id"] for r in rig.rows(api_key=rig.id_a)} == {rig.id_a}
    assert len(rig.rows(api_key=rig.id_a)) == 3
    staging = rig.rows(environment="staging")
    assert len(staging) == 4 and {r["api_key_id"] for r in staging} == {STAGING_KEY_ID}
    assert len(rig.rows(environment="prod", cohort="beta")) == 4  # 3 from key A, 1 from key B
    assert len(rig.rows(environment="prod", cohort="beta", feature="search")) == 1
    assert rig.rows(environment="prod", api_key=STAGING_KEY_ID) == []

    usage = rig.get("/ui/api/usage", by="api_key", cohort="beta").json()["rows"]
    assert {r["api_key"]: r["requests"] for r in usage} == {rig.id_a: 3, rig.id_b: 1, STAGING_KEY_ID: 4}
    summary = rig.get("/ui/api/summary", environment="prod", api_key=rig.id_b).json()
    assert summary["requests"] == 3
    series = rig.get("/ui/api/timeseries", by="feature", environment="prod", cohort="gamma").json()["rows"]
    assert sum(r["requests"] for r in series) == 2 and {r["feature"] for r in series} == {"chat"}

    export = rig.get("/ui/api/requests.csv", environment="prod", api_key=rig.id_b, feature="chat")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 2 and {(r["api_key_id"], r["cohort"], r["environment"]) for r in rows} == {
        (rig.id_b, "gamma", "prod")
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"environment": "Prod!"}, "environment must be"),
        ({"api_key": "hg-prod-" + "x" * 43}, "never the key itself"),
        ({"cohort": "c" * 201}, "longer than 200"),
    ],
)
def test_bad_filters_are_400_with_a_message(rig: Rig, params: dict[str, str], message: str) -> None:
    for path in ("/ui/api/requests", "/ui/api/requests.csv", "/ui/api/usage", "/ui/api/summary"):
        reply = rig.get(path, **params)
        assert reply.status_code == 400 and message in reply.json()["error"]["message"], (path, reply.text)


def test_filters_applied_in_the_browser_with_auth_on(rig: Rig, tmp_path: Path) -> None:
    with browser_page(f"{rig.url}/ui", tmp_path / "profile") as page:
        page.wait_for("document.body.dataset.state === 'signin'")
        page.evaluate(f"document.getElementById('key').value = {rig.admin_key!r}; "
                      "document.getElementById('signin-form').requestSubmit()")  # fmt: skip
        page.wait_for("document.body.dataset.state === 'ready'")
        assert page.evaluate("document.getElementById('total-requests').textContent") == "10"
        page.evaluate(
            "document.getElementById('cohort').value = 'beta';"
            "document.getElementById('environment').value = 'prod';"
            f"document.getElementById('api_key').value = {rig.id_a!r};"
            "document.getElementById('filters').requestSubmit()"
        )
        page.wait_for("document.body.dataset.state === 'ready' && "
                      "document.getElementById('total-requests').textContent === '3'")  # fmt: skip
        columns = page.evaluate(
            "[...document.querySelectorAll('#log tr:first-child th')].map(c => c.textContent)"
        )
        cells_js = (
            "[...document.querySelectorAll('#log tr')].slice(1)"
            ".map(r => [...r.children].map(c => c.textContent))"
        )
        log = page.evaluate(cells_js)
        assert len(log) == 3
        for row in log:
            cells = dict(zip(columns, row, strict=True))
            assert (cells["cohort"], cells["environment"], cells["key id"]) == ("beta", "prod", rig.id_a)
        usage_total = "document.querySelector('#usage tr.total').children[1].textContent"
        assert page.evaluate(usage_total) == "3"
        # The export button's request: the same filters, sent with the admin key as a header.
        exported = page.evaluate("fetchWithKey('/ui/api/requests.csv?' + filters()).then(r => r.text())")
        rows = list(csv.DictReader(io.StringIO(exported)))
        assert len(rows) == 3 and {(r["cohort"], r["environment"], r["api_key_id"]) for r in rows} == {
            ("beta", "prod", rig.id_a)
        }
        shot = page.screenshot(tmp_path / "dashboard-filters.png")
        # A whole key typed into the key-id box is refused, and the page says why.
        page.evaluate(f"document.getElementById('api_key').value = {rig.key_a!r};"
                      "document.getElementById('filters').requestSubmit()")  # fmt: skip
        page.wait_for("document.body.dataset.state === 'error'")
        assert "never the key itself" in page.evaluate("document.getElementById('error').textContent")
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000


def test_a_link_presets_the_new_filters(rig: Rig, tmp_path: Path) -> None:
    link = f"{rig.url}/ui?cohort=gamma&environment=prod&api_key={rig.id_b}#key={rig.admin_key}"
    with browser_page(link, tmp_path / "profile") as page:
        page.wait_for("document.body.dataset.state === 'ready'")
        assert page.evaluate("document.getElementById('cohort').value") == "gamma"
        assert page.evaluate("document.getElementById('api_key').value") == rig.id_b
        assert page.evaluate("document.getElementById('total-requests').textContent") == "2"
