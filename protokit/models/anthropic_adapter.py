"""Anthropic's Messages API through the official anthropic SDK."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import anthropic

from protokit.errors import ContentFilterError, MissingKeyError
from protokit.models._clients import ServerModel, client_for
from protokit.models.base import Request, Usage
from protokit.models.env import PROVIDER_ENV

__all__ = ["AnthropicModel"]

# Newer SDK releases dropped some sampling parameters from create()'s signature;
# those still travel to the API, in extra_body.
_SDK_PARAMS = frozenset(inspect.signature(anthropic.resources.messages.AsyncMessages.create).parameters)

# Anthropic requires max_tokens on every request; this is used when none is given.
DEFAULT_MAX_TOKENS = 1024


class AnthropicModel(ServerModel):
    """A Claude model (``anthropic:NAME``)."""

    provider = "anthropic"
    key_env_var = PROVIDER_ENV["anthropic"].key
    base_url_env_var = PROVIDER_ENV["anthropic"].base_url
    # The Messages API has no seed or response_format; top_k is its own.
    options = frozenset({"temperature", "max_tokens", "top_p", "top_k", "stop"})

    def _client(self) -> anthropic.AsyncAnthropic:
        base_url, key = self._server(), self._key()
        if not key:
            raise MissingKeyError(f"no Anthropic key for {self.id}: set {self.key_env_var} or pass api_key=...")
        return client_for(
            ("anthropic", base_url, key, self.timeout),
            lambda: anthropic.AsyncAnthropic(api_key=key, base_url=base_url, max_retries=0,
                                             timeout=self.timeout),
        )

    def _params(self, request: Request) -> dict[str, Any]:
        system = [m["content"] for m in request.messages if m["role"] == "system"]
        params: dict[str, Any] = {
            "model": self.name,
            "messages": [m for m in request.messages if m["role"] != "system"],
            "max_tokens": DEFAULT_MAX_TOKENS,
        }
        if system:
            params["system"] = "\n\n".join(system)
        extra: dict[str, Any] = {}
        for key, value in request.options.items():
            if key == "stop":
                params["stop_sequences"] = [value] if isinstance(value, str) else list(value)
            elif key in _SDK_PARAMS:
                params[key] = value
            else:
                extra[key] = value
        if extra:
            params["extra_body"] = extra
        return params

    async def execute(self, request: Request, usage: Usage) -> AsyncIterator[str]:
        """One Messages call; yields the text (chunk by chunk when streaming)."""
        client = self._client()
        params = self._params(request)
        with self._sdk_errors(anthropic, "api.anthropic.com"):
            if request.stream:
                async with client.messages.stream(**params) as stream:
                    async for text in stream.text_stream:
                        yield text
                    message = await stream.get_final_message()
                _read(message, usage)
            else:
                message = await client.messages.create(**params)
                _read(message, usage)
                usage.raw = message
                yield "".join(getattr(block, "text", "") for block in message.content)
            if usage.finish_reason == "refusal":
                raise ContentFilterError(f"{self.id}: the model refused on content grounds; rephrase the prompt",
                                         model=self.id)


def _read(message: Any, usage: Usage) -> None:
    u = message.usage
    read = getattr(u, "cache_read_input_tokens", None) or 0
    created = getattr(u, "cache_creation_input_tokens", None) or 0
    # Anthropic counts cache reads and writes apart from input_tokens; protokit's
    # input_tokens is the whole prompt, with the cached part in cached_input_tokens.
    usage.input_tokens = (u.input_tokens or 0) + read + created
    usage.output_tokens = u.output_tokens
    usage.cached_input_tokens = read or None
    usage.finish_reason = message.stop_reason
    usage.provider_model = message.model
