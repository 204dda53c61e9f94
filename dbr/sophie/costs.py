"""What a Claude call costs, from its usage, at list prices (US dollars per million tokens).

Cache writes (5-minute) cost 1.25x the input price and cache reads 0.1x; the Message Batches
API charges half of all of it. Unknown models are priced as Sonnet.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

# (input, output) per million tokens.
PRICES: dict[str, tuple[Decimal, Decimal]] = {
    "opus": (Decimal("15"), Decimal("75")),
    "sonnet": (Decimal("3"), Decimal("15")),
    "haiku": (Decimal("1"), Decimal("5")),
}
CACHE_WRITE = Decimal("1.25")
CACHE_READ = Decimal("0.1")
BATCH_DISCOUNT = Decimal("0.5")
MILLION = Decimal(1_000_000)


def prices_for(model: str) -> tuple[Decimal, Decimal]:
    name = model.lower()
    return next((p for key, p in PRICES.items() if key in name), PRICES["sonnet"])


def cost_usd(model: str, usage: Mapping[str, int], *, batch: bool = False) -> Decimal:
    """The cost of one call (or a sum of calls) with this usage."""
    inp, out = prices_for(model)
    total = (
        Decimal(usage.get("input_tokens", 0)) * inp
        + Decimal(usage.get("cache_creation_input_tokens", 0)) * inp * CACHE_WRITE
        + Decimal(usage.get("cache_read_input_tokens", 0)) * inp * CACHE_READ
        + Decimal(usage.get("output_tokens", 0)) * out
    ) / MILLION
    return (total * BATCH_DISCOUNT if batch else total).quantize(Decimal("0.000001"))


def cache_share(usage: Mapping[str, int]) -> float:
    """Share of input tokens served from the prompt cache."""
    total = (
        usage.get("input_tokens", 0)
        + usage.get("cache_creation_input_tokens", 0)
        + usage.get("cache_read_input_tokens", 0)
    )
    return usage.get("cache_read_input_tokens", 0) / total if total else 0.0
