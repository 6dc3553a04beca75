"""Real model names -> a route or a backend: what lets an app written for a cloud model work.

``RuleRouter`` asks this after route names and ``backend/model`` failed, in this order: the
``[models]`` alias table (a name or a glob -> route), the upstream model of a configured backend
(that backend first, then the rest of a route that holds it), a known provider family
(``gpt-*``, ``claude-*``...) to that provider's backend. Pure: no I/O; knows backends by config only.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from urllib.parse import urlparse

from hybridgate.config import AnthropicBackend, GatewayConfig, OpenAICompatBackend

# Model-name families and the provider that serves them.
FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("openai", re.compile(r"(gpt-|chatgpt-|o[1-9](-|$)|davinci|babbage|text-)")),
    ("anthropic", re.compile(r"claude-")),
    ("google", re.compile(r"gemini-|gemma-")),
    ("mistral", re.compile(r"(mistral|codestral|ministral|magistral|pixtral|devstral)-")),
    ("deepseek", re.compile(r"deepseek-")),
    ("x-ai", re.compile(r"grok-")),
)
# Hosts of the providers' own APIs, for openai_compat backends that do not name their provider.
_HOSTS = {
    "api.openai.com": "openai",
    "generativelanguage.googleapis.com": "google",
    "api.mistral.ai": "mistral",
    "api.deepseek.com": "deepseek",
    "api.x.ai": "x-ai",
}
_PROVIDER_ALIASES = {"gemini": "google", "xai": "x-ai", "grok": "x-ai"}


@dataclass(frozen=True)
class Resolved:
    """Where a model name leads: a route (rules may still pick within it) or backends in order."""

    route: str
    rule: str
    reason: str
    backends: tuple[str, ...] = ()  # empty: the route's own list (and its rules, for the default)
    model_override: str | None = None


def family_of(model: str) -> str | None:
    """The provider whose naming ``model`` follows, e.g. ``gpt-4o`` -> ``openai``."""
    name = model.lower()
    return next((provider for provider, pattern in FAMILIES if pattern.match(name)), None)


def backend_provider(config: GatewayConfig, name: str) -> str | None:
    """The provider a configured backend talks to (the embedded model: none)."""
    backend = config.backends[name]
    if isinstance(backend, AnthropicBackend):
        return "anthropic"
    if isinstance(backend, OpenAICompatBackend):
        if backend.provider:
            return _PROVIDER_ALIASES.get(backend.provider.lower(), backend.provider.lower())
        return _HOSTS.get(urlparse(backend.base_url).hostname or "")
    return None


class ModelNames:
    """Resolves the model names clients send, per the config."""

    def __init__(self, config: GatewayConfig) -> None:
        self._config = config

    def resolve(self, model: str) -> Resolved | None:
        return self._alias(model) or self._upstream(model) or self._family(model)

    def aliases(self) -> list[str]:
        """The alias names that are not globs: real model ids to list in ``/v1/models``."""
        return [name for name in self._config.models if not _is_glob(name)]

    def upstream_models(self) -> dict[str, str]:
        """Each configured backend's upstream model -> the first backend serving it."""
        found: dict[str, str] = {}
        for name, backend in self._config.backends.items():
            model = getattr(backend, "model", None)
            if isinstance(model, str):
                found.setdefault(model, name)
        return found

    def _alias(self, model: str) -> Resolved | None:
        aliases = self._config.models
        if model in aliases:
            return Resolved(
                aliases[model], f"alias:{model}", f"model '{model}' is an alias of route '{aliases[model]}'"
            )
        for pattern, route in aliases.items():
            if _is_glob(pattern) and fnmatch.fnmatchcase(model, pattern):
                return Resolved(
                    route, f"alias:{pattern}", f"model '{model}' matches alias '{pattern}' -> route '{route}'"
                )
        return None

    def _upstream(self, model: str) -> Resolved | None:
        backend = self.upstream_models().get(model)
        if backend is None:
            return None
        route, fallbacks = self._fallbacks(backend)
        reason = f"model '{model}' is the upstream model of backend '{backend}'"
        if fallbacks:
            reason += f"; fallbacks from route '{route}': {', '.join(fallbacks)}"
        return Resolved(route, "model", reason, (backend, *fallbacks))

    def _family(self, model: str) -> Resolved | None:
        provider = family_of(model)
        if provider is None:
            return None
        for name in self._config.backends:
            if backend_provider(self._config, name) == provider:
                reason = f"model '{model}' is a {provider} model; backend '{name}' serves {provider}"
                return Resolved(name, f"family:{provider}", reason, (name,), model)
        return None

    def _fallbacks(self, backend: str) -> tuple[str, list[str]]:
        """The route holding ``backend`` (the default route first) and its other backends."""
        routes = self._config.routes
        ordered = [
            self._config.default_route,
            *(name for name in routes if name != self._config.default_route),
        ]
        for name in ordered:
            if backend in routes[name].try_:
                return name, [b for b in routes[name].try_ if b != backend]
        return backend, []


def _is_glob(name: str) -> bool:
    return any(c in name for c in "*?[")
