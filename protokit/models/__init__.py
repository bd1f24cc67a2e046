"""Models: the Model base class, the built-in adapters and the provider registry."""

from __future__ import annotations

from typing import Any

from protokit.models.base import AsyncStream, Model, Request, Response, Stream, Usage
from protokit.models.fallback import FallbackModel, fallback
from protokit.models.prices import get_price, set_price
from protokit.models.registry import get_provider, providers, register
from protokit.models.sweep import sweep

__all__ = [
    "AsyncStream",
    "FallbackModel",
    "Model",
    "Request",
    "Response",
    "Stream",
    "Usage",
    "fallback",
    "get_price",
    "get_provider",
    "model",
    "providers",
    "register",
    "set_price",
    "sweep",
]


def model(spec: Any, **options: Any) -> Model:
    """Create a model.

    Parameters
    ----------
    spec
        ``"provider:name"`` (``"openai:gpt-4.1-mini"``, ``"anthropic:claude-haiku-4-5"``,
        ``"openai:llama3.2"`` with ``base_url=`` for a local server), a Python
        callable ``str -> str`` (sync or async), or an existing Model.
    **options
        Default call options (``temperature``, ``max_tokens``, ``top_p``, ``stop``,
        ``seed``, ``response_format``), plus ``base_url``, ``api_key``, ``timeout``,
        ``price={"input": ..., "output": ...}`` (USD per 1M tokens) and, for a
        callable, ``name``. An unknown option is an error naming the known ones.
        ``tools=[fn or {"name", "description", "parameters"}, ...]`` are tools the model may
        call (``Response.tool_calls``); ``schema=`` (a JSON schema or a pydantic class) the form
        its answer must have (``Response.parsed``, else a SchemaError); ``run_tools=True``
        (``max_steps=5``) runs the Python tools it calls and asks it again. Each of these may
        also be given to ``complete``, ``acomplete`` and ``stream``, replacing the model's own.
    """
    from protokit.models.registry import create

    return create(spec, **options)
