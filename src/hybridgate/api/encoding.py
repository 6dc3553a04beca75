"""Compressed request bodies: ``Content-Encoding: gzip | deflate | zstd``, decoded under the limit.

The body size limit (``[server] max_body_bytes``) applies to the decoded bytes too, and decoding
stops as soon as it is passed, so a small compressed body that expands without end (a zip bomb)
costs at most the limit in memory and gets a 413. Other encodings get a 415.
"""

from __future__ import annotations

import io
import zlib

import zstandard

from hybridgate.errors import BodyTooLargeError, RequestError, UnsupportedEncodingError

ENCODINGS = ("gzip", "x-gzip", "deflate", "zstd")


def decode_body(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """``body`` with every listed content coding undone, last applied first."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    for coding in reversed([c for c in codings if c and c != "identity"]):
        body = _decode(body, coding, max_bytes)
    return body


def _decode(body: bytes, coding: str, max_bytes: int) -> bytes:
    if coding not in ENCODINGS:
        raise UnsupportedEncodingError(
            f"Content-Encoding '{coding}' is not supported; send gzip, deflate, zstd or none"
        )
    try:
        if coding == "zstd":
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)) as reader:
                decoded = reader.read(max_bytes + 1)
        else:
            decoded = _inflate(body, coding, max_bytes)
    except (zlib.error, zstandard.ZstdError) as exc:
        raise RequestError(f"the request body is not valid {coding} data: {exc}") from exc
    if len(decoded) > max_bytes:
        raise BodyTooLargeError(f"the decoded request body is over the limit of {max_bytes} bytes")
    return decoded


def _inflate(body: bytes, coding: str, max_bytes: int) -> bytes:
    if coding != "deflate":
        return _inflate_with(body, 31, max_bytes)  # gzip: header + deflate stream + trailer
    try:
        return _inflate_with(body, 15, max_bytes)  # HTTP "deflate" is zlib-wrapped...
    except zlib.error:
        return _inflate_with(body, -15, max_bytes)  # ...though some clients send it raw


def _inflate_with(body: bytes, wbits: int, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(wbits)
    decoded = inflater.decompress(body, max_bytes + 1)
    if len(decoded) <= max_bytes and not inflater.eof:
        raise zlib.error("the compressed data ends early")
    return decoded
