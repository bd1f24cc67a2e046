"""OpenAI and any OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import openai

from protokit.errors import ContentFilterError, MissingKeyError, ServerError
from protokit.models._clients import ServerModel, client_for, post_json, transport_kwargs
from protokit.models._errors import refused
from protokit.models.base import Request, Usage
from protokit.models.env import PROVIDER_ENV
from protokit.models.images import image_data
from protokit.models.structured import schema_name, strict_schema
from protokit.models.tools import arguments_from_json

__all__ = ["OpenAIModel"]


class OpenAIModel(ServerModel):
    """A chat model behind the OpenAI API (``openai:NAME``); pass base_url for local servers."""

    provider = "openai"
    key_env_var = PROVIDER_ENV["openai"].key
    base_url_env_var = PROVIDER_ENV["openai"].base_url

    def _client(self) -> openai.AsyncOpenAI:
        base_url, key = self._server(), self._key()
        if not key:
            if not base_url:
                raise MissingKeyError(
                    f"no OpenAI key for {self.id}: set {self.key_env_var}, or pass api_key=...; "
                    "for a local server pass base_url=...")
            key = "unused"  # local OpenAI-compatible servers ignore the key, the SDK insists on one
        return client_for(
            ("openai", base_url, key, self.timeout),
            lambda: openai.AsyncOpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=self.timeout,
                                      **transport_kwargs(openai, base_url)),
        )

    def _params(self, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.name, "messages": [_wire(m) for m in request.messages]}
        for key, value in request.options.items():
            if key == "response_format" and isinstance(value, str):
                value = {"type": "json_object" if value == "json" else value}
            if key == "tools":  # function tools, the native way
                value = [{"type": "function", "function": _function(d)} for d in value]
            if key == "schema":  # structured outputs: strict json_schema
                key, value = "response_format", {"type": "json_schema", "json_schema": {
                    "name": schema_name(value), "schema": strict_schema(value), "strict": True}}
            params[key] = value
        return params

    async def execute(self, request: Request, usage: Usage) -> AsyncIterator[str]:
        """One chat completion; yields the text (chunk by chunk when streaming)."""
        client = self._client()
        params = self._params(request)
        with self._sdk_errors(openai, "api.openai.com"):
            if request.stream:
                stream = await post_json(client, openai, "/chat/completions", {
                    **params, "stream": True, "stream_options": {"include_usage": True}}, stream=True)
                calls: dict[int, tuple[list[str], list[str]]] = {}  # index -> (name pieces, argument pieces)
                refusal: list[str] = []
                async for chunk in stream:
                    with self._shape():
                        text = _read_chunk(chunk, usage, calls, refusal)
                    if text:
                        yield text
                with self._shape():
                    usage.tool_calls = streamed_calls(calls)
                if refusal:
                    raise refused(self.id, "".join(refusal))
            else:
                completion = await post_json(client, openai, "/chat/completions", params)
                with self._shape():
                    text = read_completion(self.id, completion, usage)
                yield text


def read_completion(model_id: str, completion: Mapping[str, Any], usage: Usage) -> str:
    """The text of a non-streamed chat completion (its JSON), its usage, finish reason and tool calls
    filled into ``usage``; the batch reader reads each of its answers through here too."""
    usage.raw = completion
    usage.provider_model = completion.get("model")
    if completion.get("usage"):
        _read_usage(completion["usage"], usage)
    if not completion.get("choices"):
        raise ServerError(f"{model_id}: the response had no choices", model=model_id)
    choice = completion["choices"][0]
    message = choice.get("message") or {}
    usage.finish_reason = choice.get("finish_reason")
    if usage.finish_reason == "content_filter":
        raise ContentFilterError(f"{model_id}: the answer was withheld by the content filter; rephrase the prompt",
                                 model=model_id)
    if message.get("refusal") and not message.get("content"):
        raise refused(model_id, str(message["refusal"]))
    usage.tool_calls = [{"name": fn.get("name") or "", "arguments": arguments_from_json(fn.get("arguments"))}
                        for tc in message.get("tool_calls") or () if (fn := tc.get("function"))]
    return str(message.get("content") or "")


def _read_chunk(chunk: Mapping[str, Any], usage: Usage, calls: dict[int, tuple[list[str], list[str]]],
                refusal: list[str]) -> str | None:
    """One streamed chunk read into ``usage``, ``calls`` (tool-call pieces) and ``refusal``; its text."""
    if chunk.get("usage"):
        _read_usage(chunk["usage"], usage)
    usage.provider_model = chunk.get("model") or usage.provider_model
    if not chunk.get("choices"):
        return None
    choice = chunk["choices"][0]
    if choice.get("finish_reason"):
        usage.finish_reason = choice["finish_reason"]
    delta = choice.get("delta") or {}
    for tc in delta.get("tool_calls") or ():
        names, args = calls.setdefault(tc.get("index", 0), ([], []))
        if fn := tc.get("function"):
            names.append(fn.get("name") or "")
            args.append(fn.get("arguments") or "")
    if delta.get("refusal"):
        refusal.append(delta["refusal"])
    content = delta.get("content")
    return str(content) if content else None


def streamed_calls(calls: Mapping[Any, tuple[list[str], list[str]]]) -> list[dict[str, Any]]:
    """The tool calls a stream's deltas made, in index order: each call's name and arguments put together."""
    return [{"name": "".join(names), "arguments": arguments_from_json("".join(args))}
            for _, (names, args) in sorted(calls.items()) if "".join(names)]


def _function(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A tool definition as chat.completions takes it (no empty description)."""
    return {k: v for k, v in definition.items() if k != "description" or v}


def _wire(message: Mapping[str, Any]) -> Mapping[str, Any]:
    """A message as chat.completions takes it: a tool loop's calls and results in OpenAI's shape."""
    if message["role"] == "tool":
        return {"role": "tool", "tool_call_id": message["tool_call_id"], "content": message["content"]}
    if message["role"] == "assistant" and message.get("tool_calls"):
        return {"role": "assistant", "content": message["content"] or None, "tool_calls": [
            {"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)}}
            for c in message["tool_calls"]]}
    if isinstance(message["content"], list):  # text and image parts
        return {**message, "content": [_part(p) for p in message["content"]]}
    return message


def _part(part: Mapping[str, Any]) -> dict[str, Any]:
    """A content part as chat.completions takes it: an image as an ``image_url`` (a data URL for a file)."""
    if part["type"] != "image":
        return dict(part)
    if "sha256" not in part:
        return {"type": "image_url", "image_url": {"url": part["source"]}}
    media_type, data = image_data(part)
    return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{data}"}}


def _read_usage(u: Mapping[str, Any], usage: Usage) -> None:
    usage.input_tokens = u.get("prompt_tokens")
    usage.output_tokens = u.get("completion_tokens")
    usage.cached_input_tokens = (u.get("prompt_tokens_details") or {}).get("cached_tokens")
    usage.reasoning_tokens = (u.get("completion_tokens_details") or {}).get("reasoning_tokens")
