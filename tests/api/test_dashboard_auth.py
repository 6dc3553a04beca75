"""The /ui dashboard with auth on: sign in, filter, request log, CSV export, in a real browser.

The gateway is the real app on 127.0.0.1 with virtual keys on; the ledger is pre-filled through
SqliteLedger (no upstream is called). The browser is Debian's headless Chromium, driven over the
DevTools protocol (tests/api/cdp.py) to type the admin key into the sign-in form and apply filters.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hybridgate.app import create_app
from hybridgate.ledger.records import LedgerRecord
from hybridgate.ledger.store import SqliteLedger
from tests.api.cdp import browser_page
from tests.servers import serve_in_thread
from tests.tco.ledger_fixture import Traffic, config_for, fill_ledger

PEPPER = "dashboard-test-pepper"


@dataclass(frozen=True)
class Rig:
    url: str
    admin_key: str
    user_key: str
    traffic: Traffic


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    folder = tmp_path_factory.mktemp("dash-auth")
    traffic = fill_ledger(folder / "ledger.db")
    ledger = SqliteLedger(str(folder / "ledger.db"))
    ledger.start()
    for i in range(3):  # the gateway's own eval traffic: overhead, not demand
        row = LedgerRecord(
            ts=time.time() - 120, request_id=f"eval-{i}", environment="test", route="auto", backend="cloud",
            feature="eval", traffic="eval", cost_usd=0.01, prompt_tokens=10,
        )  # fmt: skip
        ledger.record(row)
    ledger.close()
    config = config_for(folder / "ledger.db").model_copy(
        update={
            "auth": config_for(folder / "x").auth.model_copy(
                update={"enabled": True, "keys_path": str(folder / "keys.db")}
            )
        }
    )
    app = create_app(config, env={"HYBRIDGATE_KEY_PEPPER": PEPPER})
    keys = app.state.gateway.access.keys
    admin_key, _ = keys.create(environment="test", name="ops", admin=True)
    user_key, _ = keys.create(environment="test", name="app")
    with serve_in_thread(app) as url:
        yield Rig(url, admin_key, user_key, traffic)


def test_the_page_is_a_sign_in_form_and_the_data_needs_the_admin_key(rig: Rig) -> None:
    page = httpx.get(f"{rig.url}/ui")
    assert page.status_code == 200 and 'id="signin-form"' in page.text
    assert page.headers["x-frame-options"] == "DENY" and "set-cookie" not in page.headers
    assert httpx.get(f"{rig.url}/ui/api/summary").status_code == 401
    user = {"authorization": f"Bearer {rig.user_key}"}
    assert httpx.get(f"{rig.url}/ui/api/summary", headers=user).status_code == 403
    admin = {"authorization": f"Bearer {rig.admin_key}"}
    summary = httpx.get(f"{rig.url}/ui/api/summary", headers=admin).json()
    assert summary["requests"] == rig.traffic.requests  # live only: the eval rows are not demand
    assert {c["traffic"]: c["requests"] for c in summary["classes"]} == {
        "live": rig.traffic.requests,
        "eval": 3,
    }


def test_filters_request_log_and_csv_export(rig: Rig) -> None:
    admin = {"authorization": f"Bearer {rig.admin_key}"}
    support = httpx.get(f"{rig.url}/ui/api/requests", params={"feature": "support"}, headers=admin).json()[
        "rows"
    ]
    assert len(support) == 24 and {r["feature"] for r in support} == {"support"}
    assert "prompt_text" not in support[0] and "prompt_hash" not in support[0]  # metadata only
    evals = httpx.get(f"{rig.url}/ui/api/usage", params={"traffic": "eval"}, headers=admin).json()["rows"]
    assert sum(r["requests"] for r in evals) == 3
    frontier = httpx.get(f"{rig.url}/ui/api/summary", params={"route": "frontier"}, headers=admin).json()
    assert frontier["requests"] == 24 and frontier["by_rule"] == {"long-prompt": 24}
    export = httpx.get(f"{rig.url}/ui/api/requests.csv", params={"traffic": "all"}, headers=admin)
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == rig.traffic.requests + 3 and {r["traffic"] for r in rows} == {"live", "eval"}
    assert httpx.get(f"{rig.url}/ui/api/requests.csv").status_code == 401
    assert httpx.get(f"{rig.url}/ui/api/usage", params={"traffic": "bots"}, headers=admin).status_code == 400


def test_sign_in_filter_and_screenshot_in_a_real_browser(rig: Rig, tmp_path: Path) -> None:
    with browser_page(f"{rig.url}/ui", tmp_path / "profile") as page:
        page.wait_for("document.body.dataset.state === 'signin'")
        page.evaluate(f"document.getElementById('key').value = {rig.user_key!r}; "
                      "document.getElementById('signin-form').requestSubmit()")  # fmt: skip
        refused = "document.getElementById('signin-error').textContent.includes('not an admin key')"
        page.wait_for(f"document.body.dataset.state === 'signin' && {refused}")
        page.evaluate(f"document.getElementById('key').value = {rig.admin_key!r}; "
                      "document.getElementById('signin-form').requestSubmit()")  # fmt: skip
        page.wait_for("document.body.dataset.state === 'ready'")
        assert page.evaluate("document.getElementById('total-requests').textContent") == str(
            rig.traffic.requests
        )
        # The key stays in this tab's session storage and goes out as a header: no cookie at all.
        assert page.evaluate("sessionStorage.getItem('hybridgate-admin-key')") == rig.admin_key
        assert page.evaluate("document.cookie") == ""
        page.evaluate("document.getElementById('feature').value = 'support'; "
                      "document.getElementById('filters').requestSubmit()")  # fmt: skip
        page.wait_for("document.body.dataset.state === 'ready' && "
                      "document.getElementById('total-requests').textContent === '24'")  # fmt: skip
        log = page.evaluate(
            "[...document.querySelectorAll('#log tr')].slice(1).map(r => r.children[2].textContent)"
        )
        assert len(log) == 24 and set(log) == {"support"}
        assert page.evaluate("document.getElementById('total-spend').textContent") == "$0"  # local answers
        shot = page.screenshot(tmp_path / "dashboard-auth.png")
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000


def test_the_documented_key_link_signs_in_and_leaves_the_url(rig: Rig, tmp_path: Path) -> None:
    with browser_page(f"{rig.url}/ui?traffic=all#key={rig.admin_key}", tmp_path / "profile") as page:
        page.wait_for("document.body.dataset.state === 'ready'")
        assert page.evaluate("location.hash") == ""  # the key does not stay in the address bar
        assert page.evaluate("document.getElementById('traffic').value") == "all"
        assert page.evaluate("document.getElementById('total-requests').textContent") == str(
            rig.traffic.requests + 3
        )
