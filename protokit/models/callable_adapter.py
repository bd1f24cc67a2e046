"""Any Python callable (sync or async) as a model: baselines, rules, local pipelines."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from protokit.errors import ConfigError, ServerError
from protokit.models.base import Model, Request, Usage
from protokit.models.images import content_text
from protokit.models.tools import tool_calls_from

__all__ = ["CallableModel"]


class CallableModel(Model):
    """Wraps ``fn(prompt) -> str`` (or ``async``); ``fn`` may also take ``system=`` and ``messages=``.

    A callable is local code that may change while you prototype, so its calls
    bypass the cache (``cacheable = False``) and always run.
    """

    provider = "callable"
    cacheable = False

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None, **kwargs: Any) -> None:
        if not callable(fn):
            raise ConfigError(f"pk.model() needs a 'provider:name' string or a callable, got {fn!r:.60}")
        # Local code costs nothing per call unless the caller says otherwise.
        kwargs.setdefault("price", {"input": 0.0, "output": 0.0})
        super().__init__(name or str(getattr(fn, "__name__", "fn")), **kwargs)
        self.fn = fn
        params = inspect.signature(fn).parameters
        self._var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        self._accepts = set(params)

    def _kwargs(self, request: Request) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        if system and ("system" in self._accepts or self._var_kw):
            kwargs["system"] = system
        if "messages" in self._accepts:
            kwargs["messages"] = [dict(m) for m in request.messages]
        for key, value in request.options.items():
            if key in self._accepts or self._var_kw:
                kwargs[key] = value
        return kwargs

    async def execute(self, request: Request, usage: Usage) -> AsyncIterator[str]:
        """Call the function with the last user message; a dict result may carry token counts and tool calls."""
        # The text of the last user message (a function that wants images takes messages=).
        prompt = next((content_text(m["content"]) for m in reversed(request.messages) if m["role"] == "user"), "")
        try:
            if inspect.iscoroutinefunction(self.fn):
                result = await self.fn(prompt, **self._kwargs(request))
            else:
                # Run sync functions off the loop so a slow one does not stall other calls.
                result = await asyncio.to_thread(self.fn, prompt, **self._kwargs(request))
        except Exception as exc:
            raise ServerError(f"{self.id}: the function raised {type(exc).__name__}: {exc}",
                              model=self.id) from exc
        if isinstance(result, Mapping):
            usage.input_tokens = result.get("input_tokens")
            usage.output_tokens = result.get("output_tokens")
            if result.get("tool_calls"):
                usage.tool_calls = tool_calls_from(result["tool_calls"], self.id)
            result = result.get("text", "")
        if not isinstance(result, str):
            raise ConfigError(f"{self.id} returned {type(result).__name__}; a model function must return str")
        usage.finish_reason = "stop"
        yield result
