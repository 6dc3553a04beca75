"""One try of one backend, as the cascade (and the embeddings flow) records it.

The ledger keeps attempts as text, ``backend:kind`` or ``backend:kind:detail`` (``"local:ok"``,
``"cloud:error:upstream_timeout"``, ``"local:check_failed:json"``, ``"cloud:refused:media_url"``,
``"cloud:retry:upstream_error"``); ``str(attempt)`` is that text, written only when the ledger
row is built, so rows, rollups and replays read as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from hybridgate.errors import GatewayError

AttemptKind = Literal["ok", "error", "retry", "check_failed", "refused"]


@dataclass(frozen=True)
class Attempt:
    """``detail``: the error type (``error``, ``retry``), the failed check's name
    (``check_failed``) or what was refused (``refused``). ``status``: the error's HTTP status
    (``error``, ``retry``); not part of the ledger's text."""

    backend: str
    kind: AttemptKind
    detail: str | None = None
    status: int | None = None

    @classmethod
    def ok(cls, backend: str) -> Attempt:
        return cls(backend, "ok")

    @classmethod
    def error(cls, backend: str, exc: GatewayError) -> Attempt:
        return cls(backend, "error", exc.type, exc.status_code)

    @classmethod
    def retry(cls, backend: str, exc: GatewayError) -> Attempt:
        return cls(backend, "retry", exc.type, exc.status_code)

    def __str__(self) -> str:
        return f"{self.backend}:{self.kind}" + (f":{self.detail}" if self.detail is not None else "")


def as_text(attempts: Iterable[Attempt]) -> list[str]:
    """The ledger's form of a request's attempts."""
    return [str(attempt) for attempt in attempts]
