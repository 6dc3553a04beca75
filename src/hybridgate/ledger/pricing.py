"""What a request cost in US dollars: the config's price if set, else the genai-prices catalogue.

Sits at layer 5 of the flow: the pipeline prices each finished request before recording it.
Prices come from the data bundled inside the ``genai-prices`` package, so pricing works offline.
That package fetches newer prices only through its ``UpdatePrices`` background task, which this
module never starts; nothing here touches the network, and nothing here raises on the request
path: a model the catalogue doesn't know costs 0.0 and is reported by ``price_known``.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Protocol

import genai_prices
from genai_prices.data_snapshot import get_snapshot

from hybridgate.config import Price
from hybridgate.types import Usage

logger = logging.getLogger(__name__)

MTOK = 1_000_000


class Priced(Protocol):
    """What pricing needs of a configured backend or embedder."""

    @property
    def type(self) -> str: ...

    @property
    def local(self) -> bool: ...

    @property
    def price(self) -> Price | None: ...


class Pricer:
    """Prices requests; lookups are cached per instance because this runs on every request."""

    def __init__(self, *, cache_size: int = 4096) -> None:
        # Bound per instance rather than decorating methods, so caches die with the Pricer.
        self._known = lru_cache(maxsize=1024)(self._lookup)
        self._catalog_cost = lru_cache(maxsize=cache_size)(self._calc)
        # Load the catalogue now (once per process), not on the first request: it is ~18,000
        # objects, which then exist before `hybridgate serve` freezes the start-up heap, so full
        # collections do not scan them (5-6 ms of CPU each, measured), and no request pays the
        # ~150 ms load (docs/benchmarks.md, "Tail latency under concurrency").
        get_snapshot()

    def price(self, provider: str | None, model: str, usage: Usage, override: Price | None) -> float:
        """USD for ``usage`` on ``model``; ``override`` (per million tokens) wins over the catalogue."""
        if override is not None:
            return (
                usage.prompt_tokens * override.input_per_mtok
                + usage.completion_tokens * override.output_per_mtok
            ) / MTOK
        if not model or not self._known(provider, model):
            return 0.0
        return self._catalog_cost(provider, model, usage.prompt_tokens, usage.completion_tokens)

    def price_backend(self, backend: Priced, model: str, usage: Usage) -> float:
        """USD for ``usage`` on a configured backend or embedder: its ``price`` if set; else free
        if local (a local tier is free unless config prices it; the TCO values it later); else
        the catalogue's, under its ``provider`` (an ``anthropic`` backend's is Anthropic)."""
        if usage.total_tokens == 0 or (backend.price is None and backend.local):
            return 0.0
        provider = getattr(backend, "provider", None) or (
            "anthropic" if backend.type == "anthropic" else None
        )
        return self.price(provider, model, usage, backend.price)

    def price_known(self, provider: str | None, model: str) -> bool:
        """Whether the catalogue has a price for this model (with no override, unknown means $0)."""
        return bool(model) and self._known(provider, model)

    def _lookup(self, provider: str | None, model: str) -> bool:
        try:
            genai_prices.calc_price(
                genai_prices.Usage(input_tokens=0, output_tokens=0), model, provider_id=provider
            )
        except LookupError:
            logger.warning(
                "no price for model %r (provider %r) in genai-prices; its requests are recorded at $0. "
                "Set `price` on the backend in the config to fix that.",
                model,
                provider,
            )
            return False
        return True

    def _calc(self, provider: str | None, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        usage = genai_prices.Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens)
        try:
            result = genai_prices.calc_price(usage, model, provider_id=provider)
        except (LookupError, ValueError, ArithmeticError):
            # A catalogue quirk must not fail a request that already succeeded: log and charge $0.
            logger.exception("genai-prices could not price %r (provider %r)", model, provider)
            return 0.0
        return float(result.total_price)
