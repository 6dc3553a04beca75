"""Which media URLs in a request a backend may be sent (docs/privacy.md, "Egress").

vLLM, llama.cpp server and the cloud APIs fetch the ``image_url`` (and ``video_url``,
``audio_url``, Anthropic ``source.url``) URLs they are given, so a URL a client chose is a URL the
backend fetches from inside its network. The cascade asks ``MediaPolicy.check`` before a backend
gets a request. Allowed: ``data:`` URLs and http(s) URLs whose host is a public address or a
public-looking name. Refused: every other scheme (``file:``, ``gopher:``, ...), loopback,
link-local (cloud metadata), private, shared and reserved addresses, and internal names
(``localhost``, ``*.internal``, single-label names), unless the backend's ``media_url_allow``
lists the network or host. Names are never resolved: the gateway itself fetches nothing.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from collections.abc import Iterator, Sequence
from urllib.parse import unquote, urlsplit

from hybridgate.errors import MediaURLError
from hybridgate.types import ChatRequest

__all__ = ["MediaPolicy", "MediaURLError", "media_urls", "parse_allow_entry"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Names that resolve inside a network, never on the internet (RFC 6761, 6762, 8375, cloud DNS).
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.IGNORECASE)
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
# Cloud instance metadata services (AWS IPv4 and IPv6, GCP, Azure; Alibaba), which hand out
# credentials to whatever on the machine asks.
_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


def parse_allow_entry(entry: str) -> IPNetwork | str:
    """A ``media_url_allow`` entry (checked by config.py): an IP network (``10.0.0.0/8``,
    ``fd12::1``) or a host name; a name starting with a dot also allows its subdomains."""
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return entry.lower()


class MediaPolicy:
    """One backend's egress policy for media URLs, built from its ``media_url_allow``."""

    def __init__(self, allow: Sequence[str] = ()) -> None:
        parsed = [parse_allow_entry(entry) for entry in allow]
        self._networks = [p for p in parsed if not isinstance(p, str)]
        self._names = [p for p in parsed if isinstance(p, str)]

    def check(self, request: ChatRequest, backend: str) -> None:
        """Raise ``MediaURLError`` (a 400 naming the parameter) for the first URL refused."""
        for param, url in media_urls(request):
            if (reason := self.refusal(url)) is not None:
                shown = url if len(url) <= 100 else url[:100] + "..."
                raise MediaURLError(
                    f"media URL {shown!r} may not be sent to backend '{backend}': {reason}; "
                    "send the media inline as a data: URL instead",
                    param=param,
                )

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be forwarded, or None when it may."""
        if url[:5].lower() == "data:":
            return None
        if _UNSAFE.search(url):
            return "it holds spaces, control characters or backslashes"
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError:
            return "it is not a valid URL"
        if parts.scheme.lower() not in ("http", "https"):
            return "only http(s) and data: URLs are forwarded"
        if not host:
            return "it has no host"
        return self._host_refusal(_normalised(host))

    def _host_refusal(self, host: str) -> str | None:
        if host in self._names or any(n.startswith(".") and host.endswith(n) for n in self._names):
            return None
        address = _address(host)
        if isinstance(address, str):
            return address
        if address is None:
            if host == "localhost" or host.endswith(_INTERNAL_SUFFIXES) or "." not in host:
                return f"'{host}' is an internal host name"
            return None
        if any(address in network for network in self._networks):
            return None
        if address.is_global and not address.is_multicast:
            return None
        return f"{address} is {_kind(address)}"


def media_urls(request: ChatRequest) -> Iterator[tuple[str, str]]:
    """Every URL in the messages' content parts, with its parameter path (OpenAI numbering)."""
    for m, message in enumerate(request.messages):
        if not isinstance(message.content, list):
            continue
        for p, part in enumerate(message.content):
            for key, value in part.items():
                where = f"messages[{m}].content[{p}].{key}"
                if isinstance(value, dict) and isinstance(value.get("url"), str):
                    yield f"{where}.url", value["url"]
                elif key != "type" and key.endswith("url") and isinstance(value, str):
                    yield where, value


def _normalised(host: str) -> str:
    """The host as fetchers see it, after percent-decoding and IDNA's mapping: ``%31%32%37.0.0.1``,
    a circled ``l`` in ``localhost`` and fullwidth digits and full stops all mean loopback there,
    so they must here too."""
    host = unicodedata.normalize("NFKC", unquote(host))
    return host.lower().replace("\u3002", ".").rstrip(".")


def _address(host: str) -> IPAddress | str | None:
    """The IP address ``host`` spells, None for a name, or why it is neither.

    Like the URL standard (and the fetchers that follow it), a host whose last label is a number
    is an IPv4 address in any form inet_aton reads: ``2130706433``, ``0x7f.1``, ``0177.0.0.1``.
    """
    try:
        address: IPAddress = ipaddress.ip_address(host)
    except ValueError:
        if not _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return f"'{host}' is not a valid IPv4 address"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _kind(address: IPAddress) -> str:
    if address in _METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "the unspecified address (it reaches the fetcher's own host)"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_private:
        return "a private address"
    return "not a public address"
