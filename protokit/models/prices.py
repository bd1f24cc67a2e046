"""A dated price table (USD per million tokens) and the cost of one call.

The table ships as package data (``prices.json``). Users override or extend it
with :func:`set_price`, ``pk.model(..., price={...})`` or a ``PROTOKIT_PRICES``
JSON file of the same shape. A model with no known price costs ``None`` (and
one warning per model), never an invented number.

An entry may carry ``batch_input`` and ``batch_output``: the price of a call sent through the
provider's batch API (``pk.compare(..., batch=True)``); :func:`batch_price` turns an entry into
the one a batched call is billed at.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from protokit.errors import ConfigError

__all__ = ["DEFAULT_OUTPUT_TOKENS", "PriceWarning", "batch_price", "check_price", "cost", "cost_with",
           "estimate_input_tokens", "get_price", "price_date", "price_table_date", "set_price"]

# Output tokens a call is assumed to produce when max_tokens is not set: used by
# pk.estimate and by the budget's reservation before a call is sent.
DEFAULT_OUTPUT_TOKENS = 200

class PriceWarning(UserWarning):
    """A model's price is unknown, so its cost is None."""


_FIELDS = ("input", "output", "cached_input", "reasoning")
_BATCH_FIELDS = ("batch_input", "batch_output")  # the price through a batch API; see batch_price
_overrides: dict[str, dict[str, float]] = {}
_warned: set[str] = set()


def _table() -> dict[str, Any]:
    # Read per call, loaded once per value: PROTOKIT_PRICES set after import (in a notebook, a test) counts.
    return _load(os.environ.get("PROTOKIT_PRICES") or None)


@cache
def _load(extra: str | None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files(__package__).joinpath("prices.json").read_text())
    if extra:
        try:
            with open(extra, encoding="utf-8") as fh:
                user = json.load(fh)
            data["models"].update(user.get("models", user))
        except (OSError, ValueError, AttributeError) as exc:
            raise ConfigError(f"PROTOKIT_PRICES={extra} could not be read as a price table: {exc}") from exc
    return data


def price_table_date() -> str:
    """The date the shipped prices were taken from the providers' pages."""
    return str(_table()["updated"])


def check_price(model_id: str, entry: Any) -> dict[str, float]:
    """A validated price entry (USD per 1M tokens); ConfigError naming the bad field otherwise."""
    if not isinstance(entry, dict) or "input" not in entry or "output" not in entry:
        raise ConfigError(f"price for {model_id} must be a dict with 'input' and 'output' (USD per 1M tokens), "
                          f"e.g. price={{'input': 0.4, 'output': 1.6}}; got {entry!r:.80}")
    unknown = set(entry) - set(_FIELDS) - set(_BATCH_FIELDS)
    if unknown:
        raise ConfigError(f"unknown price field(s) {', '.join(sorted(unknown))} for {model_id}; "
                          f"known: {', '.join(_FIELDS + _BATCH_FIELDS)}")
    for name, value in entry.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ConfigError(f"price {name}={value!r} for {model_id} must be a non-negative number")
    return {k: float(v) for k, v in entry.items() if v is not None}


def set_price(model_id: str, *, input: float, output: float, cached_input: float | None = None,
              reasoning: float | None = None, batch_input: float | None = None,
              batch_output: float | None = None) -> None:
    """Set the price of ``provider:name`` in USD per million tokens (overrides the table)."""
    entry = {"input": input, "output": output, "cached_input": cached_input, "reasoning": reasoning,
             "batch_input": batch_input, "batch_output": batch_output}
    _overrides[model_id] = check_price(model_id, entry)
    _warned.discard(model_id)


def get_price(model_id: str) -> dict[str, float] | None:
    """The price entry for a model id, or None when it is unknown."""
    found = _entry(model_id)
    return {k: v for k, v in found.items() if k in _FIELDS} if found else None


def _entry(model_id: str) -> dict[str, float] | None:
    """A model's whole entry, batch prices included: its override, else the table's."""
    if model_id in _overrides:
        return _overrides[model_id]
    found = _table()["models"].get(model_id)
    return {k: float(v) for k, v in found.items() if k in _FIELDS or k in _BATCH_FIELDS} if found else None


def price_date(model_id: str) -> str:
    """Where a model's price comes from: the table's date, or ``"set_price"`` for an override."""
    return "set_price" if model_id in _overrides else price_table_date()


def batch_price(model_id: str, *, price: Mapping[str, float] | None = None) -> dict[str, float] | None:
    """The price a call sent through a batch API is billed at; None when the model's price is unknown.

    From ``price`` (the model's own entry) when given, else the table's entry (with overrides).
    ``batch_input``/``batch_output`` replace ``input``/``output``, and cached input and reasoning
    tokens get the discount of the side they are part of. An entry without batch prices is
    returned at its list price: no discount is invented.
    """
    entry = dict(price) if price is not None else _entry(model_id)
    if entry is None:
        return None
    out = {k: v for k, v in entry.items() if k in _FIELDS}
    for side, part in (("input", "cached_input"), ("output", "reasoning")):
        batch = entry.get(f"batch_{side}")
        if batch is None:
            continue
        if part in out:
            out[part] = out[part] * batch / out[side] if out[side] else batch
        out[side] = batch
    return out


def estimate_input_tokens(chars: int) -> int:
    """Input tokens for a prompt of ``chars`` characters (about 4 per token in English)."""
    return math.ceil(chars / 4)


def cost(model_id: str, input_tokens: int | None, output_tokens: int | None,
         cached_input_tokens: int | None = None, reasoning_tokens: int | None = None,
         *, price: Mapping[str, float] | None = None) -> float | None:
    """Cost of one call in USD, or None (and one warning per model) when the price or usage is unknown.

    ``price`` is the model's own entry when it has one (``pk.model(..., price=...)``);
    otherwise the table (with overrides) is looked up by ``model_id``.
    """
    price = price if price is not None else get_price(model_id)
    if price is None:
        if model_id not in _warned:
            _warned.add(model_id)
            # warn_explicit: the call site is deep in async code, so point at protokit, not a source line.
            warnings.warn_explicit(
                f"no price known for {model_id}; its cost is reported as None. "
                f"Set one with pk.set_price({model_id!r}, input=..., output=...) (USD per 1M tokens)",
                PriceWarning, filename="protokit", lineno=0, module="protokit.prices",
            )
        return None
    return cost_with(price, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens)


def cost_with(price: Mapping[str, float], input_tokens: int | None, output_tokens: int | None,
              cached_input_tokens: int | None = None, reasoning_tokens: int | None = None) -> float | None:
    """Cost in USD of the given usage at ``price``; None when the usage is unknown (and not free)."""
    if price["input"] == 0 and price["output"] == 0:
        return 0.0  # free (a local function or server): no usage needed
    if input_tokens is None or output_tokens is None:
        return None
    cached = cached_input_tokens or 0
    # Cached input is billed at its own rate where the provider has one.
    usd = (input_tokens - cached) * price["input"] + cached * price.get("cached_input", price["input"])
    reasoning = reasoning_tokens or 0
    if "reasoning" in price:
        # Reasoning tokens are part of the output count; bill them at their own rate.
        usd += (output_tokens - reasoning) * price["output"] + reasoning * price["reasoning"]
    else:
        usd += output_tokens * price["output"]
    return usd / 1_000_000
