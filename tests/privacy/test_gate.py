"""The egress gate: the one door to non-local backends, and the effective-policy precedence.

Pure unit tests, plus one that builds a gateway in front of a recording OpenAI-compatible stand-in
on loopback (not OpenAI) to show a non-local backend cannot be called around the gate.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from hybridgate.config import GatewayConfig, PrivacyConfig
from hybridgate.errors import PrivacyPolicyError
from hybridgate.gateway import build_gateway
from hybridgate.privacy.gate import Clearance, ClearedRequest, EgressGate, GatedBackend, path_of
from hybridgate.privacy.policy import PrivacyGuard
from hybridgate.types import ChatRequest, ChatResponse, Decision, Json, Message, RequestContext
from tests.standins.openai_upstream import run_openai_standin

SRC = Path(__file__).parents[2] / "src" / "hybridgate"


class Cloud:
    name, model, local = "cloud", "m", False

    async def complete(self, request: ChatRequest, model: str) -> ChatResponse:
        return ChatResponse({"choices": []})

    async def stream(self, request: ChatRequest, model: str) -> AsyncGenerator[Json, None]:
        yield {}

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


def request(**extra: object) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": "hi"}], **extra}
    )


@pytest.mark.parametrize(
    ("policy", "pii", "decision"),
    [
        ("allow", True, "allowed"),
        ("redact", True, "redacted"),
        ("local_only", True, "blocked"),
        ("block", True, "blocked"),
        ("local_only", False, "allowed"),
    ],
)
def test_the_gate_applies_the_effective_policy(policy: str, pii: bool, decision: str) -> None:
    redacted = request(temperature=0.5)
    egress: list[str] = []
    out = EgressGate().clear(
        Cloud(), request(), Clearance(policy, pii, "shadow", redacted), "primary", egress
    )
    assert egress == [f"cloud:shadow:{decision}"]
    if decision == "blocked":
        assert out is None
    else:
        assert isinstance(out, ClearedRequest) and out.cleared_for == "cloud"
        assert out.temperature == (0.5 if decision == "redacted" else None)


def test_unknown_fields_leave_only_when_configured() -> None:
    asked = request(
        frequency_penalty=0.2, custom_context="x", messages=[{"role": "user", "content": "hi", "notes": "n"}]
    )
    out = EgressGate().clear(Cloud(), asked, None, "primary", [])
    assert out is not None
    body = out.upstream_body("m")
    assert (
        body["frequency_penalty"] == 0.2
        and "custom_context" not in body
        and "notes" not in body["messages"][0]
    )
    kept = EgressGate(forward_unknown_fields=True).clear(Cloud(), asked, None, "primary", [])
    assert kept is not None and kept.upstream_body("m")["custom_context"] == "x"


def test_a_gated_backend_refuses_what_the_gate_did_not_clear() -> None:
    gated = GatedBackend(Cloud())
    with pytest.raises(PrivacyPolicyError, match="did not pass the egress gate"):
        asyncio.run(gated.complete(request(), "m"))
    other = EgressGate().clear(Cloud(), request(), None, "primary", [])
    assert other is not None
    object.__setattr__(other, "_cleared_for", "elsewhere")  # cleared for another backend
    with pytest.raises(PrivacyPolicyError):
        asyncio.run(gated.complete(other, "m"))


def test_paths_name_the_step_and_the_origin() -> None:
    assert [path_of("live", s) for s in ("primary", "fallback", "escalation")] == [
        "live",
        "fallback",
        "escalation",
    ]
    assert path_of("shadow", "fallback") == "shadow-fallback" and path_of("judge", "primary") == "judge"


def test_non_local_backends_are_reachable_only_through_the_gate(tmp_path: Path) -> None:
    with run_openai_standin() as cloud:
        config = GatewayConfig.model_validate(
            {
                "ledger": {"path": str(tmp_path / "gw.db")},
                "backends": {
                    "local": {
                        "type": "openai_compat",
                        "model": "m",
                        "base_url": cloud.base_url,
                        "local": True,
                    },
                    "cloud": {"type": "openai_compat", "model": "m", "base_url": cloud.base_url},
                },
                "routes": {"auto": {"try": ["local", "cloud"]}},
            }
        )
        gateway = build_gateway(config, env={})
        protected = gateway.pipeline._cascade.protected
        assert isinstance(protected["cloud"].backend, GatedBackend)
        assert not isinstance(protected["local"].backend, GatedBackend)

        async def around_the_gate() -> None:
            await gateway.start()
            try:
                await protected["cloud"].complete(request(), "m", [])
            finally:
                await gateway.aclose()

        with pytest.raises(PrivacyPolicyError):
            asyncio.run(around_the_gate())
        assert cloud.requests == []


def _calls(path: Path, names: set[str]) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        func = node.func if isinstance(node, ast.Call) else None
        if isinstance(func, ast.Name) and func.id in names:
            found.append(func.id)
        elif isinstance(func, ast.Attribute) and func.attr in names:
            found.append(func.attr)
    return found


def test_nothing_else_builds_backends_or_their_protection() -> None:
    """Backends are built in gateway.py only, wrapped in Protected in cascade/core.py only (after
    ``gated``), and only Protected and the gate wrapper call a backend's complete/stream."""
    builders = {p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py") if _calls(p, {"build_backend"})}
    assert builders == {"gateway.py"}
    protectors = {p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py") if _calls(p, {"Protected"})}
    assert protectors == {"cascade/core.py"}
    assert "gated(backends)" in (SRC / "cascade" / "core.py").read_text()
    backend_calls = {
        p.relative_to(SRC).as_posix()
        for p in SRC.rglob("*.py")
        if "self.backend.complete(" in p.read_text() or "self.inner." in p.read_text()
    }
    assert backend_calls == {"cascade/resilience.py", "privacy/gate.py"}
    # remote embedders are called in one place, right after the gate admits the call
    service = (SRC / "embeddings" / "service.py").read_text()
    embedder_calls = {
        p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py") if "await embedder.embed(" in p.read_text()
    }
    assert embedder_calls == {"embeddings/service.py"} and service.count("await embedder.embed(") == 1
    gate_then_call = service[service.index("self._gate.admits(") : service.index("await embedder.embed(")]
    assert "continue" in gate_then_call and "for " not in gate_then_call.split("continue", 1)[1]


SOURCES = ("default", "key", "feature", "asked", "landed")


@pytest.mark.parametrize("strict_source", SOURCES)
def test_effective_policy_is_the_strictest_of_every_source(strict_source: str) -> None:
    """Each of the five sources alone can make a request local_only; none can loosen another."""
    config = PrivacyConfig(
        policy="local_only" if strict_source == "default" else "allow",
        routes={
            "auto": "local_only" if strict_source == "asked" else "allow",
            "cloud": "local_only" if strict_source == "landed" else "allow",
        },
        features={"f": "local_only" if strict_source == "feature" else "allow"},
        ner_model=None,
    )
    guard = PrivacyGuard(config, ["local"], ["auto", "cloud"], "auto")
    ctx = RequestContext(
        request_id="r", feature="f", privacy_policy="local_only" if strict_source == "key" else None
    )
    decision = Decision(route="cloud", backends=("cloud",), rule="override")
    ask = ChatRequest(model="auto", messages=[Message(role="user", content="hi")])
    assert guard.policy_for(ctx, decision, ask) == "local_only"


def test_the_init_template_keeps_pii_prompts_local_whatever_its_rules_say() -> None:
    """`hybridgate init` writes a default policy, and its example rule (code questions to the
    cloud route) no longer moves a prompt with PII off the machine."""
    from hybridgate.config import load_config
    from hybridgate.router import RuleRouter

    config = load_config(SRC / "hybridgate.example.toml")
    assert config.privacy is not None and config.privacy.policy == "local_only"
    local = [name for name, backend in config.backends.items() if backend.local]
    guard = PrivacyGuard(config.privacy.model_copy(update={"ner_model": None}), local, config.routes)
    ask = ChatRequest(model="auto", messages=[Message(role="user", content="Python: mail ada@example.com")])
    ctx = RequestContext(request_id="r")
    decision = RuleRouter(config).decide(ask, ctx)
    assert decision.rule == "rule:code-questions"
    screened = guard.screen(ask, ctx, decision).decision
    assert screened.backends and all(name in local for name in screened.backends)
