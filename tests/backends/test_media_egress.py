"""Media URLs a client puts in a request, end to end through the official SDKs (issue 14, finding 8).

The gateway is the real app on 127.0.0.1; ``cloud`` and ``lan`` are OpenAI-compatible stand-ins
(tests/standins/openai_upstream.py), not providers; ``lan`` allows loopback media URLs in its
config. ``canary`` (tests/standins/raw_upstream.py) is where the hostile URLs point: nobody may
ever reach it, and no upstream may even be sent a request that names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest

from hybridgate.app import create_app
from hybridgate.config import GatewayConfig
from hybridgate.gateway import Gateway
from tests.servers import serve_in_thread
from tests.standins.openai_upstream import OpenAIStandIn, run_openai_standin
from tests.standins.raw_upstream import RawUpstream, run_raw_upstream

PIXEL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@dataclass
class Rig:
    url: str
    gateway: Gateway
    cloud: OpenAIStandIn
    lan: OpenAIStandIn
    canary: RawUpstream

    def last_row(self) -> dict[str, Any]:
        self.gateway.ledger.flush()
        return dict(self.gateway.ledger.recent(1)[0])


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    ledger = tmp_path_factory.mktemp("egress") / "gw.db"
    with run_openai_standin() as cloud, run_openai_standin() as lan, run_raw_upstream() as canary:
        remote = {"type": "openai_compat", "model": "m", "timeout_s": 5}
        config = GatewayConfig.model_validate(
            {
                "ledger": {"path": str(ledger), "flush_interval_s": 0.05},
                "backends": {
                    "cloud": {**remote, "base_url": cloud.base_url},
                    "lan": {**remote, "base_url": lan.base_url, "media_url_allow": ["127.0.0.0/8"]},
                },
                "routes": {"auto": {"try": ["cloud"]}, "mixed": {"try": ["cloud", "lan"]}},
            }
        )
        app = create_app(config, env={})
        with serve_in_thread(app) as url:
            yield Rig(url, app.state.gateway, cloud, lan, canary)


@pytest.fixture
def gw(rig: Rig) -> Rig:
    rig.cloud.reset()
    rig.lan.reset()
    rig.canary.requests.clear()
    return rig


@pytest.fixture
def oai(rig: Rig) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{rig.url}/v1", api_key="caller-key", max_retries=0) as client:
        yield client


def with_image(url: str) -> list[Any]:
    parts = [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": url}}]
    return [{"role": "user", "content": parts}]


def hostile_urls(canary: str) -> list[str]:
    port = canary.split(":")[2].split("/")[0]
    return [
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        f"{canary}/cat.png",
        f"http://[::ffff:127.0.0.1]:{port}/cat.png",
        f"http://2130706433:{port}/cat.png",  # 127.0.0.1 as one number
        f"http://localhost:{port}/cat.png",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://10.0.0.8/cat.png",
        "gopher://127.0.0.1:6379/_FLUSHALL",
    ]


@pytest.mark.parametrize("streaming", [False, True])
def test_hostile_media_urls_are_refused_before_any_upstream_sees_them(
    gw: Rig, oai: openai.OpenAI, streaming: bool
) -> None:
    for url in hostile_urls(gw.canary.base_url):
        with pytest.raises(openai.BadRequestError) as caught:
            oai.chat.completions.create(model="auto", messages=with_image(url), stream=streaming)
        body = caught.value.body
        assert isinstance(body, dict), url
        assert body["param"] == "messages[0].content[1].image_url.url", url
        assert body["code"] == "media_url_refused", url
        row = gw.last_row()
        assert (row["status"], row["attempts"]) == (400, ["cloud:refused:media_url"]), url
    assert gw.cloud.requests == []
    assert gw.canary.requests == []


def test_the_anthropic_edge_refuses_an_image_source_url(gw: Rig) -> None:
    image: Any = {"type": "image", "source": {"type": "url", "url": "http://169.254.169.254/latest/meta-data/"}}
    with (
        anthropic.Anthropic(base_url=gw.url, api_key="caller-key", max_retries=0) as client,
        pytest.raises(anthropic.BadRequestError) as caught,
    ):
        client.messages.create(model="auto", max_tokens=5, messages=[{"role": "user", "content": [image]}])
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "169.254.169.254" in caught.value.body["error"]["message"]
    assert gw.cloud.requests == []


@pytest.mark.parametrize("url", [PIXEL, "https://images.example.com/cat.png", "http://93.184.215.14/cat.png"])
def test_data_urls_and_public_urls_are_forwarded(gw: Rig, oai: openai.OpenAI, url: str) -> None:
    oai.chat.completions.create(model="auto", messages=with_image(url))
    sent = gw.cloud.last_request.body["messages"][0]["content"][1]
    assert sent["image_url"]["url"] == url


def test_a_backend_that_allows_a_network_gets_what_the_others_may_not(gw: Rig, oai: openai.OpenAI) -> None:
    url = f"{gw.canary.base_url}/cat.png"  # loopback: only 'lan' allows it
    oai.chat.completions.create(model="mixed", messages=with_image(url))
    assert gw.cloud.requests == []
    assert gw.lan.last_request.body["messages"][0]["content"][1]["image_url"]["url"] == url
    assert gw.last_row()["attempts"] == ["cloud:refused:media_url", "lan:ok"]
    assert gw.canary.requests == []  # the stand-in does not fetch; nor does the gateway
