"""The media URL egress policy (backends/egress.py) over plain URLs and requests; no I/O."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hybridgate.backends.egress import MediaPolicy, media_urls
from hybridgate.config import OpenAICompatBackend
from hybridgate.errors import MediaURLError
from hybridgate.types import ChatRequest

REFUSED = [
    ("file:///etc/passwd", "only http(s)"),
    ("FILE:///etc/passwd", "only http(s)"),
    ("ftp://example.com/x.png", "only http(s)"),
    ("javascript:alert(1)", "only http(s)"),
    ("http:///x.png", "no host"),
    ("http://[::1", "not a valid URL"),
    ("http://127.0.0.1/x.png", "loopback"),
    ("http://127.1/x.png", "loopback"),
    ("http://0x7f.1/x.png", "loopback"),
    ("http://0177.0.0.1/x.png", "loopback"),
    ("http://2130706433/x.png", "loopback"),
    ("http://[::1]/x.png", "loopback"),
    ("http://[::ffff:127.0.0.1]/x.png", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://[fd00:ec2::254]/latest/", "cloud metadata"),
    ("http://169.254.1.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://10.1.2.3/x.png", "private"),
    ("http://172.16.0.1/x.png", "private"),
    ("http://192.168.1.1/x.png", "private"),
    ("http://[fc00::1]/x.png", "private"),
    ("http://100.64.0.1/x.png", "not a public address"),
    ("http://0.0.0.0/x.png", "unspecified"),
    ("http://0/x.png", "unspecified"),
    ("http://[::]/x.png", "unspecified"),
    ("http://224.0.0.1/x.png", "not a public"),
    ("http://1.2.3.999/x.png", "not a valid IPv4"),
    ("http://localhost/x.png", "internal host name"),
    ("http://LOCALHOST./x.png", "internal host name"),
    ("http://app.localhost/x.png", "internal host name"),
    ("http://metadata.google.internal/", "internal host name"),
    ("http://printer.local/", "internal host name"),
    ("http://intranet/x.png", "internal host name"),
    ("http://example.com\\@127.0.0.1/x.png", "backslashes"),
    ("http://example.com /x.png", "spaces"),
    ("http://evil@127.0.0.1/x.png", "loopback"),
    ("http://\uff11\uff12\uff17.0.0.1/x.png", "loopback"),  # fullwidth digits
    ("http://%31%32%37.0.0.1/x.png", "loopback"),
    ("http://[fe80::1%25eth0]/x.png", "link-local"),
    ("http://127\u30020\u30020\u30021/x.png", "loopback"),  # ideographic full stops
    ("http://\u24dbocalhost/x.png", "internal host name"),  # a circled l
]
ALLOWED = [
    "data:image/png;base64,AAAA",
    "DATA:image/png;base64,AAAA",
    "https://images.example.com/cat.png",
    "http://93.184.215.14/cat.png",
    "https://[2606:2800:220:1:248:1893:25c8:1946]/cat.png",
    "https://cafe.de/cat.png",
    "https://123.example/cat.png",
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_refused(url: str, reason: str) -> None:
    refusal = MediaPolicy().refusal(url)
    assert refusal is not None and reason in refusal


@pytest.mark.parametrize("url", ALLOWED)
def test_allowed(url: str) -> None:
    assert MediaPolicy().refusal(url) is None


def test_a_backends_allow_list_opens_networks_and_names_only() -> None:
    policy = MediaPolicy(["10.20.0.0/16", "fd12::/16", "images.corp.internal", ".media.lan"])
    assert policy.refusal("http://10.20.3.4/x.png") is None
    assert policy.refusal("http://[fd12::5]/x.png") is None
    assert policy.refusal("http://images.corp.internal/x.png") is None
    assert policy.refusal("http://a.b.media.lan/x.png") is None
    assert policy.refusal("http://10.21.0.1/x.png") is not None
    assert policy.refusal("http://other.corp.internal/x.png") is not None
    assert policy.refusal("http://169.254.169.254/") is not None
    assert policy.refusal("file:///etc/passwd") is not None  # no list opens another scheme


def test_check_names_the_parameter_of_the_first_refused_url() -> None:
    request = ChatRequest.model_validate(
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": "be brief"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                        {"type": "input_image", "image_url": "http://127.0.0.1/b.png"},
                    ],
                },
            ],
        }
    )
    assert [p for p, _ in media_urls(request)] == [
        "messages[1].content[1].image_url.url",
        "messages[1].content[2].image_url",
    ]
    with pytest.raises(MediaURLError) as caught:
        MediaPolicy().check(request, "cloud")
    assert caught.value.status_code == 400
    assert caught.value.param == "messages[1].content[2].image_url"
    assert "backend 'cloud'" in caught.value.message and "loopback" in caught.value.message


def test_config_refuses_an_allow_entry_that_is_neither_network_nor_name() -> None:
    base = {"type": "openai_compat", "model": "m"}
    assert OpenAICompatBackend.model_validate({**base, "media_url_allow": ["10.0.0.0/8", ".Corp.Example"]})
    with pytest.raises(ValidationError, match="neither an IP network nor a host name"):
        OpenAICompatBackend.model_validate({**base, "media_url_allow": ["http://10.0.0.0/8"]})
