"""Anthropic's Messages API through the official anthropic SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import anthropic

from protokit.errors import ConfigError, MissingKeyError
from protokit.models._clients import ServerModel, client_for, post_json, transport_kwargs
from protokit.models._errors import refused
from protokit.models.base import Request, Usage
from protokit.models.env import PROVIDER_ENV
from protokit.models.images import image_data
from protokit.models.structured import schema_name
from protokit.models.tools import arguments_from_json

__all__ = ["AnthropicModel"]

# Anthropic requires max_tokens on every request; this is used when none is given.
DEFAULT_MAX_TOKENS = 1024


class AnthropicModel(ServerModel):
    """A Claude model (``anthropic:NAME``)."""

    provider = "anthropic"
    key_env_var = PROVIDER_ENV["anthropic"].key
    base_url_env_var = PROVIDER_ENV["anthropic"].base_url
    # The Messages API has no seed or response_format (schema= is asked as a forced tool); top_k is its own.
    options = frozenset({"temperature", "max_tokens", "top_p", "top_k", "stop", "tools", "schema"})

    def _client(self) -> anthropic.AsyncAnthropic:
        base_url, key = self._server(), self._key()
        if not key:
            raise MissingKeyError(f"no Anthropic key for {self.id}: set {self.key_env_var} or pass api_key=...")
        return client_for(
            ("anthropic", base_url, key, self.timeout),
            lambda: anthropic.AsyncAnthropic(api_key=key, base_url=base_url, max_retries=0,
                                             timeout=self.timeout, **transport_kwargs(anthropic, base_url)),
        )

    def _params(self, request: Request) -> dict[str, Any]:
        system = [m["content"] for m in request.messages if m["role"] == "system"]
        params: dict[str, Any] = {
            "model": self.name,
            "messages": _wire([m for m in request.messages if m["role"] != "system"]),
            "max_tokens": DEFAULT_MAX_TOKENS,
        }
        for i, m in enumerate(params["messages"]):
            if m["content"] in ("", []) and not (m["role"] == "assistant" and i == len(params["messages"]) - 1):
                # The API refuses it with a 400 that reads like a wrong option; say what is empty instead.
                raise ConfigError(f"{self.id}: message {i} ({m['role']}) is empty, and Anthropic refuses empty "
                                  "messages; check the prompt template and the case's columns")
        if system:
            params["system"] = "\n\n".join(system)
        tools = [_tool(d) for d in request.options.get("tools") or ()]
        forced = _forced(request)
        if forced is not None:
            if any(t["name"] == forced for t in tools):
                raise ConfigError(f"{self.id}: a tool is named {forced!r} like the schema; rename one (its title)")
            # Structured output as a forced tool: its input is the answer. With other tools beside it
            # the model must call one of them ("any"): the schema's one to answer.
            tools.append({"name": forced, "description": "Give the answer: its input is the answer.",
                          "input_schema": request.options["schema"]})
            params["tool_choice"] = {"type": "tool", "name": forced} if len(tools) == 1 else {"type": "any"}
        if tools:
            params["tools"] = tools
        for key, value in request.options.items():
            if key in ("tools", "schema"):
                continue
            if key == "stop":
                params["stop_sequences"] = [value] if isinstance(value, str) else list(value)
            else:
                params[key] = value
        return params

    async def execute(self, request: Request, usage: Usage) -> AsyncIterator[str]:
        """One Messages call; yields the text (chunk by chunk when streaming)."""
        client = self._client()
        body = self._params(request)
        forced = _forced(request)
        with self._sdk_errors(anthropic, "api.anthropic.com"):
            if request.stream:
                events = await post_json(client, anthropic, "/v1/messages", {**body, "stream": True}, stream=True)
                message = _Accumulator(forced)
                sent = False
                async for event in events:
                    with self._shape():
                        piece = message.read(event)
                    if piece:
                        sent = True
                        yield piece
                with self._shape():
                    text = read_message(message.final(), usage, forced)
                if not sent and text:  # schema= was asked: the answer is the tool's input, whole
                    yield text
            else:
                answer = await post_json(client, anthropic, "/v1/messages", body)
                with self._shape():
                    text = read_message(answer, usage, forced)
                yield text
            if usage.finish_reason == "refusal":
                raise refused(self.id, text)


class _Accumulator:
    """A streamed message's events put back together as the message's JSON, as a non-streamed call gets it."""

    def __init__(self, forced: str | None) -> None:
        self.forced = forced
        self.message: dict[str, Any] = {"content": [], "usage": {}}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.pieces: dict[int, list[str]] = {}  # a block's text, or a tool_use block's input JSON, in pieces

    def read(self, event: Mapping[str, Any]) -> str | None:
        """Take one event; the text it adds to the answer, if any."""
        kind = event.get("type")
        if kind == "message_start":
            self.message = {**event["message"], "usage": dict(event["message"].get("usage") or {})}
        elif kind == "content_block_start":
            index, block = event["index"], dict(event["content_block"])
            self.blocks[index] = block
            self.pieces[index] = []
        elif kind == "content_block_delta":
            index, delta = event["index"], event["delta"]
            if delta.get("type") == "text_delta":
                self.pieces[index].append(delta["text"])
                return str(delta["text"]) if self.forced is None else None
            if delta.get("type") == "input_json_delta":
                # Not yielded, even for the schema's answer: its text is the input re-serialized (final()),
                # as a call not streamed gets it, so both record the same answer.
                self.pieces[index].append(delta["partial_json"])
        elif kind == "message_delta":
            self.message.update({k: v for k, v in (event.get("delta") or {}).items() if v is not None})
            self.message["usage"].update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
        return None

    def final(self) -> dict[str, Any]:
        """The whole message: its content blocks in order, each with its text or input complete."""
        content = []
        for index in sorted(self.blocks):
            block, pieces = self.blocks[index], self.pieces[index]
            if block.get("type") == "text":
                block = {**block, "text": (block.get("text") or "") + "".join(pieces)}
            elif block.get("type") == "tool_use" and pieces:
                block = {**block, "input": arguments_from_json("".join(pieces))}
            content.append(block)
        return {**self.message, "content": content}


def read_message(message: Mapping[str, Any], usage: Usage, forced: str | None) -> str:
    """The answer's text of a message (its JSON), its usage, stop reason and tool calls filled into ``usage``;
    the batch reader reads each of its answers through here too."""
    usage.raw = message
    _read(message, usage)
    text, usage.tool_calls = _content(message.get("content") or (), forced)
    return text


def _forced(request: Request) -> str | None:
    """The name of the tool that carries a schema= answer, or None without a schema."""
    schema = request.options.get("schema")
    return schema_name(schema) if schema is not None else None


def _tool(definition: Mapping[str, Any]) -> dict[str, Any]:
    """A tool definition as the Messages API takes it."""
    tool = {"name": definition["name"], "input_schema": definition["parameters"]}
    if definition.get("description"):
        tool["description"] = definition["description"]
    return tool


def _content(blocks: Sequence[Mapping[str, Any]], forced: str | None) -> tuple[str, list[dict[str, Any]]]:
    """(the answer's text, the tool calls) of a message; a forced schema tool's input is the text."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    answer: str | None = None
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            texts.append(block["text"])
        elif kind == "tool_use":
            if forced is not None and block["name"] == forced and answer is None:
                answer = json.dumps(block.get("input") or {}, ensure_ascii=False)
            else:
                calls.append({"name": block["name"], "arguments": dict(block.get("input") or {})})
    return ("".join(texts) if answer is None else answer), calls


def _wire(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Messages as the Messages API takes them: a tool loop's calls as tool_use blocks, results as tool_result."""
    out: list[Mapping[str, Any]] = []
    for m in messages:
        if m["role"] == "tool":
            block = {"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": m["content"]}
            last = out[-1] if out else None
            if last is not None and last.get("role") == "user" and isinstance(last.get("content"), list) \
                    and all(b.get("type") == "tool_result" for b in last["content"]):
                last["content"].append(block)  # results of one turn's calls go back in one user message
            else:
                out.append({"role": "user", "content": [block]})
        elif m["role"] == "assistant" and m.get("tool_calls"):
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m["content"]}] if m["content"] else []
            blocks += [{"type": "tool_use", "id": c["id"], "name": c["name"], "input": c["arguments"]}
                       for c in m["tool_calls"]]
            out.append({"role": "assistant", "content": blocks})
        elif isinstance(m["content"], list):  # text and image parts
            out.append({"role": m["role"], "content": [_block(p) for p in m["content"]]})
        else:
            out.append(m)
    return out


def _block(part: Mapping[str, Any]) -> dict[str, Any]:
    """A content part as the Messages API takes it: an image as a base64 (a file) or url source."""
    if part["type"] != "image":
        return dict(part)
    if "sha256" not in part:
        return {"type": "image", "source": {"type": "url", "url": part["source"]}}
    media_type, data = image_data(part)
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _read(message: Mapping[str, Any], usage: Usage) -> None:
    u = message.get("usage") or {}
    read = u.get("cache_read_input_tokens") or 0
    created = u.get("cache_creation_input_tokens") or 0
    # Anthropic counts cache reads and writes apart from input_tokens; protokit's
    # input_tokens is the whole prompt, with the cached part in cached_input_tokens.
    usage.input_tokens = (u.get("input_tokens") or 0) + read + created
    usage.output_tokens = u.get("output_tokens")
    usage.cached_input_tokens = read or None
    usage.finish_reason = message.get("stop_reason")
    usage.provider_model = message.get("model")
