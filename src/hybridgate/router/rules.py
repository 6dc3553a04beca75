"""Rule-based routing: request -> Decision, with the reasons written down.

Order of precedence, first match wins:
1. an explicit route override (header ``x-hybridgate-route``);
2. a route named by the client (``model="local"``);
3. a concrete model: ``backend/model`` or a bare backend name;
4. a real model name (router/models.py): the ``[models]`` aliases, a backend's upstream model,
   a provider family;
5. for ``model="auto"`` (or the default route, or an unknown name under
   ``unknown_models = "auto"``): the configured rules, in file order;
6. the default route.

Pure logic: no I/O, no knowledge of backends beyond their names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hybridgate.config import GatewayConfig, RuleConfig
from hybridgate.errors import ModelNotFoundError
from hybridgate.router.models import ModelNames, Resolved
from hybridgate.types import ChatRequest, Decision, RequestContext

if TYPE_CHECKING:
    from hybridgate.router.learned import LearnedRouter

AUTO = "auto"
# A rough chars-per-token ratio for English; good enough to pick a tier, never used for billing.
CHARS_PER_TOKEN = 4


def estimate_prompt_tokens(request: ChatRequest) -> int:
    return len(request.prompt_text()) // CHARS_PER_TOKEN + 4 * len(request.messages)


@dataclass(frozen=True)
class CompiledRule:
    config: RuleConfig
    pattern: re.Pattern[str] | None

    def reasons(self, request: ChatRequest, ctx: RequestContext, tokens: int) -> list[str] | None:
        """The reasons this rule matches, or None when any condition fails."""
        rule, found = self.config, []
        if rule.feature is not None:
            if ctx.feature != rule.feature:
                return None
            found.append(f"feature={rule.feature}")
        if rule.min_prompt_tokens is not None:
            if tokens < rule.min_prompt_tokens:
                return None
            found.append(f"prompt_tokens~{tokens}>={rule.min_prompt_tokens}")
        if rule.max_prompt_tokens is not None:
            if tokens > rule.max_prompt_tokens:
                return None
            found.append(f"prompt_tokens~{tokens}<={rule.max_prompt_tokens}")
        if self.pattern is not None:
            if not self.pattern.search(request.last_user_text()):
                return None
            found.append(f"regex /{self.pattern.pattern}/ matched last user message")
        if rule.has_tools is not None:
            if bool(request.tools) != rule.has_tools:
                return None
            found.append("tools present" if rule.has_tools else "no tools")
        if rule.has_images is not None:
            if request.has_images() != rule.has_images:
                return None
            found.append("images present" if rule.has_images else "no images")
        return found


class RuleRouter:
    """Decides a route for each request from the config's routes and rules."""

    def __init__(self, config: GatewayConfig) -> None:
        self._config = config
        self._names = ModelNames(config)
        self._rules = [
            CompiledRule(rule, re.compile(rule.regex) if rule.regex else None) for rule in config.rules
        ]
        # Router files and the embedding load once, here, never per request (router/reload.py swaps them).
        self._learned = _learned_routers(config)

    @property
    def learned(self) -> dict[str, LearnedRouter]:
        """The learned routers in use, by route."""
        return self._learned

    def swap_learned(self, routers: dict[str, LearnedRouter]) -> None:
        """Replace every learned router at once: one assignment, so a request sees old or new, never a mix."""
        self._learned = routers

    def decide(self, request: ChatRequest, ctx: RequestContext) -> Decision:
        decision = self._decide(request, ctx)
        learned = self._learned.get(decision.route)
        if (
            learned is None
            or decision.rule == "concrete"
            or decision.backends != tuple(self._config.routes[decision.route].try_)
        ):
            return decision
        return learned.decide(decision, request)  # router = "learned": cheap tier first, or strong only

    def _decide(self, request: ChatRequest, ctx: RequestContext) -> Decision:
        if ctx.route_override:
            return self._route(ctx.route_override, "override", ["x-hybridgate-route header"])
        model = request.model
        if model in self._config.routes and model != self._config.default_route and model != AUTO:
            return self._route(model, "explicit", [f"model names route '{model}'"])
        if model in (AUTO, self._config.default_route):
            return self._by_rules(request, ctx)
        if model.partition("/")[0] in self._config.backends:
            return self._concrete(model)
        if (resolved := self._names.resolve(model)) is not None:
            return self._resolved(resolved, request, ctx)
        if self._config.unknown_models == "reject":
            self._concrete(model)  # raises: unknown model, with the names that work
        reason = f'unknown model \'{model}\' served as "auto" (unknown_models = "auto")'
        return self._by_rules(request, ctx, [reason])

    def _resolved(self, resolved: Resolved, request: ChatRequest, ctx: RequestContext) -> Decision:
        if resolved.backends:
            return Decision(
                route=resolved.route,
                backends=resolved.backends,
                rule=resolved.rule,
                reasons=(resolved.reason,),
                model_override=resolved.model_override,
            )
        if resolved.route in (AUTO, self._config.default_route):
            return self._by_rules(request, ctx, [resolved.reason])
        return self._route(resolved.route, resolved.rule, [resolved.reason])

    def _by_rules(self, request: ChatRequest, ctx: RequestContext, why: list[str] | None = None) -> Decision:
        tokens = estimate_prompt_tokens(request)
        for rule in self._rules:
            reasons = rule.reasons(request, ctx, tokens)
            if reasons is not None:
                return self._route(rule.config.route, f"rule:{rule.config.name}", [*(why or []), *reasons])
        default = self._config.default_route
        return self._route(default, "default", [*(why or []), f"no rule matched; prompt_tokens~{tokens}"])

    def _route(self, name: str, rule: str, reasons: list[str]) -> Decision:
        route = self._config.routes.get(name)
        if route is None:
            raise ModelNotFoundError(
                f"no route '{name}'; configured routes: {', '.join(self._config.routes)}", param="model"
            )
        return Decision(route=name, backends=tuple(route.try_), rule=rule, reasons=tuple(reasons))

    def _concrete(self, model: str) -> Decision:
        backend, _, upstream_model = model.partition("/")
        if backend in self._config.backends:
            return Decision(
                route=backend,
                backends=(backend,),
                rule="concrete",
                reasons=(f"model names backend '{backend}'",),
                model_override=upstream_model or None,
            )
        known = ", ".join(
            [*self._config.routes, *self._names.aliases(), *(f"{b}/<model>" for b in self._config.backends)]
        )
        raise ModelNotFoundError(
            f"unknown model '{model}'; use one of: {known} (or set unknown_models = \"auto\")", param="model"
        )


def _learned_routers(config: GatewayConfig) -> dict[str, LearnedRouter]:
    if not any(route.router == "learned" for route in config.routes.values()):
        return {}  # numpy and the embedding are loaded only when a route needs them
    from hybridgate.router.learned import load_learned_routers

    return load_learned_routers(config)
