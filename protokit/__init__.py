"""protokit: compare models in Jupyter, record and replay every call, promote notebooks.

>>> import protokit as pk
>>> m = pk.model("openai:gpt-4.1-mini", temperature=0)
>>> cmp = pk.compare(models=[m, "anthropic:claude-haiku-4-5"], prompt="Classify: {ticket}", cases=df)

Heavy parts (pandas, widgets, notebooks) load on first use, so ``import protokit``
stays cheap.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from protokit import cache, runner
from protokit.errors import (
    AuthError,
    BadRequestError,
    BudgetExceeded,
    CacheError,
    CacheMiss,
    Cancelled,
    CellError,
    ConfigError,
    ContentFilterError,
    ExpectationFailed,
    GateError,
    MissingExtraError,
    MissingKeyError,
    NotebookError,
    ParameterTypeError,
    PromoteError,
    ProtokitError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    SandboxError,
    SchemaError,
    ScorerTypeError,
    ServerError,
    TimeoutError_,  # deprecated: the old name of ProviderTimeoutError
)
from protokit.models import Model, Response, fallback, model, providers, register, set_price, sweep
from protokit.models import base as _base
from protokit.runner import DEFAULT_CONTEXT as _DEFAULT_CONTEXT
from protokit.runner import RetryPolicy, call_context
from protokit.runner import telemetry as _telemetry

__version__ = "0.1.0"

# The one place the layers are wired together: a call made outside any run (m.complete()) goes
# through the runner's default context (the process cache, the default retries). A run, or
# pk.call_context, hands its own context down instead; importing a module installs nothing.
_base.set_pipeline(_DEFAULT_CONTEXT.pipeline())
# With opentelemetry-api installed, every call can become a span and metrics (recorded once the
# application configures a provider; see protokit.runner.telemetry). Found without importing it.
_telemetry.install()
# Library etiquette: protokit's log records go wherever the application sends them, and nowhere
# (not Python's last-resort stderr handler) when it configured no logging.
logging.getLogger("protokit").addHandler(logging.NullHandler())

# name -> module that defines it; imported on first attribute access.
_LAZY = {
    "compare": "protokit.comparisons",
    "acompare": "protokit.comparisons",
    "estimate": "protokit.comparisons",
    "Comparison": "protokit.comparisons",
    "load_run": "protokit.comparisons",
    "scorers": "protokit.scorers",
    "Compare": "protokit.widgets",
    "output": "protokit.notebook.outputs",
    "expect": "protokit.notebook.expect",
    "Sandbox": "protokit.sandbox",
}

__all__ = [
    "AuthError",
    "BadRequestError",
    "BudgetExceeded",
    "CacheError",
    "CacheMiss",
    "Cancelled",
    "CellError",
    "Compare",
    "Comparison",
    "ConfigError",
    "ContentFilterError",
    "ExpectationFailed",
    "GateError",
    "MissingExtraError",
    "MissingKeyError",
    "Model",
    "NotebookError",
    "ParameterTypeError",
    "PromoteError",
    "ProtokitError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "Response",
    "RetryPolicy",
    "Sandbox",
    "SandboxError",
    "SchemaError",
    "ScorerTypeError",
    "ServerError",
    "TimeoutError_",
    "__version__",
    "acompare",
    "cache",
    "call_context",
    "compare",
    "estimate",
    "expect",
    "fallback",
    "load_run",
    "model",
    "output",
    "providers",
    "register",
    "runner",
    "scorers",
    "set_price",
    "sweep",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'protokit' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    # pk.scorers is a module; every other lazy name is an attribute of its module.
    value = module if name == "scorers" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext protokit``: register the ``%%compare`` magic."""
    importlib.import_module("protokit.cell_magic").load_ipython_extension(ipython)
