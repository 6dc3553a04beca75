"""Pricer: config overrides, and the genai-prices catalogue bundled with the package (offline)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import genai_prices
import pytest

from hybridgate.config import GatewayConfig, Price
from hybridgate.ledger.pricing import Pricer
from hybridgate.types import Usage


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail loudly if pricing tries to open any socket: it must use the bundled data only."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pricing tried to use the network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield


def test_override_is_per_million_tokens() -> None:
    price = Pricer().price(
        "openai", "gpt-4o-mini", Usage(2_000_000, 500_000), Price(input_per_mtok=3, output_per_mtok=15)
    )
    assert price == pytest.approx(2 * 3 + 0.5 * 15)


def test_override_prices_unknown_models_too() -> None:
    pricer = Pricer()
    assert (
        pricer.price("local", "smollm2", Usage(1000, 0), Price(input_per_mtok=1, output_per_mtok=0)) == 0.001
    )
    assert pricer.price("local", "smollm2", Usage(1000, 0), Price(input_per_mtok=0, output_per_mtok=0)) == 0.0


@pytest.mark.usefixtures("no_network")
def test_known_model_matches_the_catalogue() -> None:
    usage = Usage(prompt_tokens=12_345, completion_tokens=678)
    cost = Pricer().price("openai", "gpt-4o-mini", usage, None)
    assert cost > 0
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=12_345, output_tokens=678), "gpt-4o-mini", provider_id="openai"
    )
    assert cost == pytest.approx(float(expected.total_price))
    # gpt-4o-mini has flat (untiered) prices: cost is tokens times the catalogue's $/MTok.
    per_mtok_in, per_mtok_out = expected.model_price.input_mtok, expected.model_price.output_mtok
    assert isinstance(per_mtok_in, Decimal) and isinstance(per_mtok_out, Decimal)
    assert cost == pytest.approx((12_345 * float(per_mtok_in) + 678 * float(per_mtok_out)) / 1_000_000)


@pytest.mark.usefixtures("no_network")
def test_provider_may_be_left_out_and_dated_names_match() -> None:
    pricer = Pricer()
    base = pricer.price("openai", "gpt-4o-mini", Usage(1000, 100), None)
    assert pricer.price(None, "gpt-4o-mini", Usage(1000, 100), None) == pytest.approx(base)
    assert pricer.price("openai", "gpt-4o-mini-2024-07-18", Usage(1000, 100), None) == pytest.approx(base)
    assert pricer.price("anthropic", "claude-haiku-4-5", Usage(1000, 100), None) > 0


@pytest.mark.usefixtures("no_network")
def test_unknown_model_costs_nothing_and_is_remembered(caplog: pytest.LogCaptureFixture) -> None:
    pricer = Pricer()
    assert pricer.price("openai", "no-such-model", Usage(1000, 100), None) == 0.0
    assert pricer.price("local", "smollm2-135m", Usage(1000, 100), None) == 0.0
    assert pricer.price("local", "smollm2-135m", Usage(5, 5), None) == 0.0
    assert not pricer.price_known("openai", "no-such-model")
    assert not pricer.price_known("local", "smollm2-135m")
    assert pricer.price_known("openai", "gpt-4o-mini")
    assert not pricer.price_known("openai", "")
    warnings = [r for r in caplog.records if "smollm2-135m" in r.getMessage()]
    assert len(warnings) == 1  # looked up once, then cached


def test_zero_tokens_cost_nothing() -> None:
    assert Pricer().price("openai", "gpt-4o-mini", Usage(0, 0), None) == 0.0


@pytest.mark.usefixtures("no_network")
def test_a_configured_backend_or_embedder_is_priced_by_one_rule() -> None:
    """Chat backends and embedders alike: the config's price, else free when local, else the
    catalogue under the backend's provider (an anthropic backend's is Anthropic)."""
    config = GatewayConfig.model_validate(
        {
            "backends": {
                "local": {"type": "embedded"},
                "local_priced": {"type": "embedded", "price": {"input_per_mtok": 1, "output_per_mtok": 2}},
                "claude": {"type": "anthropic", "model": "claude-3-5-haiku-20241022"},
            },
            "routes": {"auto": {"try": ["local"]}},
            "default_route": "auto",
            "embeddings": {
                "backends": {"words": {"type": "wordllama"}},
                "routes": {"default": {"try": ["words"]}},
                "default_route": "default",
            },
        }
    )
    pricer, usage = Pricer(), Usage(1_000_000, 1_000_000)
    assert pricer.price_backend(config.backends["local"], "smollm2", usage) == 0.0
    assert pricer.price_backend(config.backends["local_priced"], "smollm2", usage) == pytest.approx(3.0)
    assert pricer.price_backend(config.backends["claude"], "claude-3-5-haiku-20241022", usage) == (
        pytest.approx(pricer.price("anthropic", "claude-3-5-haiku-20241022", usage, None))
    ) and pricer.price_known("anthropic", "claude-3-5-haiku-20241022")
    assert pricer.price_backend(config.backends["claude"], "claude-3-5-haiku-20241022", Usage()) == 0.0
    assert config.embeddings is not None
    assert pricer.price_backend(config.embeddings.backends["words"], "wordllama", usage) == 0.0


def test_the_catalogue_is_loaded_with_the_pricer_so_the_start_up_freeze_covers_it() -> None:
    """`hybridgate serve` freezes the heap after building the gateway (gc.freeze); a catalogue
    loaded later, by the first request, is ~18,000 objects every full collection scans again.
    In a fresh interpreter: build a Pricer, freeze, price a request; few new objects remain."""
    script = (
        "import gc\n"
        "from hybridgate.ledger.pricing import Pricer\n"
        "from hybridgate.types import Usage\n"
        "pricer = Pricer()\n"
        "gc.collect(); gc.freeze()\n"
        "usage = Usage(prompt_tokens=10, completion_tokens=5)\n"
        "assert pricer.price('openai', 'gpt-4o-mini', usage, None) > 0\n"
        "gc.collect()\n"
        "print(len(gc.get_objects()))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) < 2_000  # the catalogue alone is ~18,000 tracked objects
