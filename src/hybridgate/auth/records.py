"""A virtual API key: its plaintext format and the record stored for it.

Plaintext keys look like ``hg-<environment>-<43 base62 characters>`` (about 256 random bits).
The first 8 random characters double as the key id, stored in clear so a key is found by id and
then compared by hash in constant time; the rest never leaves the caller. This module is pure
data: no I/O, no hashing, no clock (callers pass ``now``).
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Required, TypedDict, Unpack

from hybridgate.config import ENVIRONMENT_PATTERN
from hybridgate.errors import AuthenticationError, RequestError

PREFIX = "hg"
SECRET_CHARS = 43
KEY_ID_CHARS = 8
# Base62 is URL-safe and has no '-', so the environment may contain '-' and still parse.
ALPHABET = string.ascii_letters + string.digits
_SECRET_PATTERN = re.compile(f"[{ALPHABET}]{{{SECRET_CHARS}}}")
# Longer input is not a key; refusing it early keeps huge headers off the HMAC.
MAX_KEY_CHARS = len(PREFIX) + 2 + 32 + SECRET_CHARS

MALFORMED = (
    "malformed API key: hybridgate keys look like hg-<environment>-<43 letters and digits>; "
    "send one as 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
)


@dataclass(frozen=True, slots=True)
class KeyParts:
    environment: str
    key_id: str


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the gateway knows about a key. Never holds the plaintext or its hash."""

    key_id: str
    name: str
    environment: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    budget_usd_day: float | None = None
    budget_usd_month: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    routes: tuple[str, ...] = ()
    """Route names this key may use; empty means every route."""
    admin: bool = False
    privacy: str | None = None
    """A privacy policy (allow, redact, local_only, block) for this key's requests; see docs/privacy.md."""

    def allows_route(self, route: str) -> bool:
        return not self.routes or route in self.routes

    def status(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["routes"] = list(self.routes)
        return data


def check_environment(environment: str) -> str:
    if not ENVIRONMENT_PATTERN.fullmatch(environment):
        raise RequestError(
            f"environment {environment!r} cannot name keys: use 1-32 lowercase letters, digits, "
            "'_', '.' or '-', starting with a letter or digit",
            param="environment",
        )
    return environment


def new_key(environment: str) -> str:
    check_environment(environment)
    secret = "".join(secrets.choice(ALPHABET) for _ in range(SECRET_CHARS))
    return f"{PREFIX}-{environment}-{secret}"


def parse_key(plaintext: str) -> KeyParts:
    """The environment and key id of a well-formed key; AuthenticationError for anything else."""
    if len(plaintext) > MAX_KEY_CHARS or not plaintext.startswith(PREFIX + "-"):
        raise AuthenticationError(MALFORMED)
    environment, _, secret = plaintext[len(PREFIX) + 1 :].rpartition("-")
    if not ENVIRONMENT_PATTERN.fullmatch(environment) or not _SECRET_PATTERN.fullmatch(secret):
        raise AuthenticationError(MALFORMED)
    return KeyParts(environment=environment, key_id=secret[:KEY_ID_CHARS])


PRIVACY_POLICIES = ("allow", "redact", "local_only", "block")


class KeySpec(TypedDict, total=False):
    """What a new key is made of: the one list of its options, shared by ``KeyStore.create``, the
    stores and ``draft_key`` (unset: no limit, every route, never expires, no admin, no policy)."""

    environment: Required[str]
    name: Required[str]
    budget_usd_day: float | None
    budget_usd_month: float | None
    rpm: int | None
    tpm: int | None
    routes: Sequence[str]
    expires_at: float | None
    admin: bool
    privacy: str | None


def check_new_key(spec: KeySpec, now: float) -> None:
    name = spec["name"]
    if not name.strip() or len(name) > 100:
        raise RequestError("a key needs a name of 1-100 characters", param="name")
    budgets = (
        ("budget_usd_day", spec.get("budget_usd_day")),
        ("budget_usd_month", spec.get("budget_usd_month")),
    )
    for param, value in budgets:
        if value is not None and not value > 0:
            raise RequestError(f"{param} must be a positive number of dollars", param=param)
    for param, count in (("rpm", spec.get("rpm")), ("tpm", spec.get("tpm"))):
        if count is not None and count < 1:
            raise RequestError(f"{param} must be at least 1 (leave it unset for no limit)", param=param)
    expires_at = spec.get("expires_at")
    if expires_at is not None and expires_at <= now:
        raise RequestError("expires_at must be in the future", param="expires_at")
    privacy = spec.get("privacy")
    if privacy is not None and privacy not in PRIVACY_POLICIES:
        raise RequestError(f"privacy must be one of {', '.join(PRIVACY_POLICIES)}", param="privacy")


def route_names(routes: Sequence[str]) -> tuple[str, ...]:
    return tuple(route.strip() for route in routes if route.strip())


def draft_key(now: float, **spec: Unpack[KeySpec]) -> tuple[str, KeyRecord]:
    """A new plaintext key and its record, checked (RequestError) but not stored anywhere yet."""
    check_new_key(spec, now)
    environment = spec["environment"]
    plaintext = new_key(check_environment(environment))
    record = KeyRecord(
        key_id=parse_key(plaintext).key_id,
        name=spec["name"].strip(),
        environment=environment,
        created_at=now,
        expires_at=spec.get("expires_at"),
        budget_usd_day=spec.get("budget_usd_day"),
        budget_usd_month=spec.get("budget_usd_month"),
        rpm=spec.get("rpm"),
        tpm=spec.get("tpm"),
        routes=route_names(spec.get("routes", ())),
        admin=spec.get("admin", False),
        privacy=spec.get("privacy"),
    )
    return plaintext, record


def check_usable(record: KeyRecord, environment: str | None, now: float) -> KeyRecord:
    """``record`` if its key may be used now (in ``environment``); AuthenticationError if not.

    Only a caller holding the full key gets this far, so saying why it fails leaks nothing."""
    if record.revoked_at is not None:
        raise AuthenticationError("this API key has been revoked; ask for a new one")
    if record.expires_at is not None and now >= record.expires_at:
        expired = datetime.fromtimestamp(record.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise AuthenticationError(f"this API key expired at {expired}; ask for a new one")
    if environment is not None and record.environment != environment:
        raise AuthenticationError(
            f"this API key is for environment '{record.environment}' but this gateway serves "
            f"'{environment}'; use a key created with --env {environment}"
        )
    return record


def record_from_row(row: Sequence[Any], *, routes: Sequence[str]) -> KeyRecord:
    """A record from a stored row whose columns follow ``KeyRecord``'s fields in order (both key
    stores select them so); ``routes`` is the row's route list as that store decodes it."""
    key_id, name, environment, created, expires, revoked, day, month, rpm, tpm = row[:10]
    return KeyRecord(
        key_id,
        name,
        environment,
        created,
        expires,
        revoked,
        day,
        month,
        rpm,
        tpm,
        routes=tuple(routes),
        admin=bool(row[11]),
        privacy=row[12],
    )
