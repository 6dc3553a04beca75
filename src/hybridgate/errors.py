"""One error tree for the whole gateway.

Every error a caller can see is a ``GatewayError``. Each class carries the HTTP status and the
wire ``type`` it is rendered with; ``api/errors.py`` is the only place that turns them into
OpenAI or Anthropic error bodies. Backends translate HTTP-client/SDK exceptions into this tree with
``raise ... from exc``; nothing picks a status code by matching message text.

    GatewayError
    ├── RequestError                400 invalid_request_error
    │   ├── BodyTooLargeError       413
    │   ├── RequestTimeoutError     408  (the body did not arrive within [server] body_timeout_s)
    │   ├── UnsupportedEncodingError 415 (a Content-Encoding other than gzip, deflate, zstd)
    │   ├── ModelNotFoundError      404
    │   ├── NotFoundError           404  (a stored response that does not exist, or not for you)
    │   └── MediaURLError           400  (a media URL no backend of the route may be sent)
    ├── AuthenticationError         401
    ├── PermissionDeniedError       403
    │   └── PrivacyPolicyError      403  (PII under block / local_only with no local tier)
    ├── RateLimitError              429
    │   └── LimitExceededError      429  (a key's limit or budget; insufficient_quota for a budget)
    ├── ClientClosedError           499  (the caller hung up; for the ledger)
    ├── ConfigError                 (start-up only, never served)
    │   ├── RouterFileError         (a router file unusable)
    │   │   └── RouterReloadError   422  (POST /admin/router/reload refused; the old files serve)
    │   └── GoldenFileError         (evals: a golden file unusable)
    ├── DataFileError               (router training: an outcome file unusable)
    ├── StoreUnavailableError       (a shared store failed; never served: the component degrades)
    ├── KeyStoreUnavailableError    503 service_unavailable  (a key the shared key store must check)
    └── BackendError                502 upstream_error  (retryable by the cascade)
        ├── UpstreamTimeoutError    504
        ├── UpstreamUnavailableError 503
        ├── BackendOverloadedError  503  (queue full or circuit open; never sent upstream)
        ├── UpstreamStatusError     upstream's own 4xx/5xx (502 for a status HTTP does not define)
        ├── UpstreamAuthError       502  (the upstream refused the gateway's own credentials)
        ├── UpstreamProtocolError   502  (garbage, a redirect, a dropped stream)
        └── EngineCrashedError      502  (the embedded engine process died; not retried)
"""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Literal


class GatewayError(Exception):
    """Base of every error hybridgate raises on purpose."""

    status_code: int = 500
    type: str = "api_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers: dict[str, str] = {}  # extra response headers, e.g. retry-after on a 429


class ConfigError(GatewayError):
    """The config file is missing, malformed or inconsistent. Raised before serving."""

    type = "config_error"


class StoreUnavailableError(GatewayError):
    """A state store (cache, limits, ledger) failed or holds garbage. Never reaches a caller: the
    component that owns the store degrades (a cache miss, a local limit, a disk spool) and says so
    in ``/healthz``."""

    status_code = 503
    type = "store_unavailable"


class KeyStoreUnavailableError(GatewayError):
    """The shared key store (PostgreSQL) cannot be reached and this replica has not verified the
    caller's key recently, so it cannot tell a valid key from a bad one. Served, as a 503 with
    ``retry-after`` rather than a 401: the key may well be valid once the store is back."""

    status_code = 503
    type = "service_unavailable"
    code = "key_store_unavailable"

    def __init__(self, message: str, *, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.headers["retry-after"] = str(retry_after_s)


class RequestError(GatewayError):
    """The caller's request is malformed or asks for something that does not exist."""

    status_code = 400
    type = "invalid_request_error"


class BodyTooLargeError(RequestError):
    status_code = 413
    code = "request_too_large"


class RequestTimeoutError(RequestError):
    """The caller sent its body too slowly (the server closes the connection after the answer)."""

    status_code = 408
    code = "request_timeout"


class UnsupportedEncodingError(RequestError):
    status_code = 415
    code = "unsupported_content_encoding"


class ModelNotFoundError(RequestError):
    status_code = 404
    code = "model_not_found"


class NotFoundError(RequestError):
    status_code = 404


class AuthenticationError(GatewayError):
    status_code = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDeniedError(GatewayError):
    status_code = 403
    type = "permission_error"


class PrivacyPolicyError(PermissionDeniedError):
    """The prompt holds PII and the policy forbids sending it anywhere this route can reach."""

    code = "pii_policy"


class ClientClosedError(GatewayError):
    """The caller hung up before the answer; recorded as nginx's 499, never seen by anyone."""

    status_code = 499
    type = "client_closed"


class RateLimitError(GatewayError):
    status_code = 429
    type = "rate_limit_error"


class BackendError(GatewayError):
    """A backend failed. The cascade may try the next backend in the route."""

    status_code = 502
    type = "upstream_error"
    retryable: bool = True
    retry_after_s: float | None = None  # the upstream's Retry-After, when it sent one


class UpstreamTimeoutError(BackendError):
    status_code = 504
    type = "timeout"


class UpstreamUnavailableError(BackendError):
    status_code = 503
    type = "service_unavailable"


class BackendOverloadedError(BackendError):
    """The backend's concurrency limit and queue are full, or its circuit breaker is open."""

    status_code = 503
    type = "overloaded"


class UpstreamProtocolError(BackendError):
    """The upstream answered with something that is not its documented wire format."""

    code = "bad_upstream_response"


# The HTTP error statuses, and Anthropic's documented 529 "overloaded".
_ERROR_STATUSES = frozenset(s.value for s in HTTPStatus if s.value >= 400) | {529}


class UpstreamAuthError(BackendError):
    """The upstream refused the gateway's own credentials (its 401/403). The caller's key is not
    at fault, so the caller gets a 502 without the provider's message (it may hint at the key)."""

    code = "upstream_auth_failed"


class EngineCrashedError(BackendError):
    """The embedded backend's llama.cpp process died while serving the request. It is restarted;
    the request is not retried, since the same request may well crash it again."""

    code = "engine_crashed"
    retryable = False


class UpstreamStatusError(BackendError):
    """The upstream answered with an HTTP error; its status and type are passed through."""

    def __init__(self, message: str, *, status_code: int, type: str, param: str | None = None) -> None:
        super().__init__(message, param=param)
        # A status that is no HTTP error (999, 299) cannot be passed on: it is the upstream's fault.
        self.status_code = status_code if status_code in _ERROR_STATUSES else 502
        self.type = type
        # A 4xx caused by the request itself (bad params) would fail on every backend alike;
        # 408/409/429 and 5xx are the upstream's trouble and worth a fallback.
        self.retryable = self.status_code >= 500 or self.status_code in (408, 409, 429)


# The errors of one component each, kept in this one tree (they were in their modules before).

LimitName = Literal["requests", "tokens", "budget_day", "budget_month"]


class LimitExceededError(RateLimitError):
    """A key's limit or budget refused a request. ``headers`` go on the 429 response."""

    def __init__(
        self, message: str, *, limit: LimitName, retry_after_s: float, headers: dict[str, str]
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.headers = {"retry-after": str(max(1, math.ceil(retry_after_s))), **headers}
        # OpenAI's codes: a spent budget is "insufficient_quota", a busy minute a rate limit.
        self.code = "insufficient_quota" if limit.startswith("budget") else "rate_limit_exceeded"


class MediaURLError(RequestError):
    """A media URL in the request is one no backend of its route may be sent."""

    code = "media_url_refused"


class RouterFileError(ConfigError):
    """A router file is missing, not ours, from a newer version, or incomplete."""


class RouterReloadError(RouterFileError):
    """A reload was refused; the router files loaded before keep serving."""

    status_code = 422


class DataFileError(GatewayError):
    """An outcome file is missing, empty or has a column that cannot be used."""

    type = "data_error"


class GoldenFileError(ConfigError):
    """A golden file is missing, not TOML, or has cases that do not validate."""
