"""The Anthropic messages wire format (``POST /v1/messages``)."""

from __future__ import annotations

import json
from typing import Any

from protokit.sandbox.replies import BadRequest, Chat, Reply, block_text, split_pieces

__all__ = ["AnthropicDialect"]

_STOP = {"stop": "end_turn", "stop_sequence": "stop_sequence", "length": "max_tokens", "tool_use": "tool_use",
         "refusal": "refusal"}
_ERRORS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class AnthropicDialect:
    """Parses messages requests and renders replies the ``anthropic`` SDK accepts."""

    name = "anthropic"

    def parse(self, body: Any) -> Chat:
        """Turn a messages body into a :class:`Chat`; ``system`` may be a string or text blocks."""
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model: Field required")
        raw = body.get("messages")
        if not isinstance(raw, list) or not raw:
            raise BadRequest("messages: must be a non-empty list")
        messages: list[tuple[str, str]] = []
        for i, msg in enumerate(raw):
            if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
                raise BadRequest(f"messages.{i}.role: must be 'user' or 'assistant'")
            content = msg.get("content")
            if (content == "" or content == []) and not (i == len(raw) - 1 and msg["role"] == "assistant"):
                # As the API answers it: only a final assistant message (a prefill) may be empty.
                raise BadRequest(f"messages.{i}: all messages must have non-empty content except for the "
                                 "optional final assistant message")
            results = _tool_results(msg.get("content"))
            if msg["role"] == "user" and results is not None:
                messages.append(("tool", results))  # a turn of tool results, in neutral form
            else:
                messages.append((msg["role"], block_text(msg.get("content"))))
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise BadRequest("max_tokens: must be a positive integer")
        stops = body.get("stop_sequences") or []
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise BadRequest("stop_sequences: must be a list of strings")
        tools, forced = _tools(body.get("tools"), body.get("tool_choice"))
        return Chat(
            model=model,
            system=block_text(body.get("system") or ""),
            messages=messages,
            max_tokens=max_tokens,
            stop=stops,
            stream=bool(body.get("stream")),
            tools=tools,
            forced=forced,
        )

    def _message(self, chat: Chat, reply: Reply | None, content: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": f"msg_sbx{chat.digest()[:24]}",
            "type": "message",
            "role": "assistant",
            "model": chat.model,
            "content": content,
            "stop_reason": _STOP[reply.finish] if reply else None,
            "stop_sequence": reply.stop_sequence if reply else None,
            "usage": {
                "input_tokens": chat.prompt_tokens(),
                "output_tokens": reply.completion_tokens if reply else 1,
            },
        }

    def render(self, chat: Chat, reply: Reply) -> bytes:
        """A ``message`` object with one text block, or one tool_use block per tool call."""
        content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text or not reply.tool_calls \
            else []
        content += [{"type": "tool_use", "id": _call_id(chat, i), "name": name, "input": args}
                    for i, (name, args) in enumerate(reply.tool_calls)]
        return _dumps(self._message(chat, reply, content)).encode()

    def render_stream(self, chat: Chat, reply: Reply) -> bytes:
        """The event sequence the API sends: message_start ... message_stop, one delta per word."""
        events: list[str] = []

        def emit(kind: str, data: dict[str, Any]) -> None:
            events.append(f"event: {kind}\ndata: {_dumps({'type': kind, **data})}\n\n")

        emit("message_start", {"message": self._message(chat, None, [])})
        index = 0
        if reply.text or not reply.tool_calls:
            emit("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
            emit("ping", {})
            for piece in split_pieces(reply.text):
                emit("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": piece}})
            emit("content_block_stop", {"index": 0})
            index = 1
        for i, (name, args) in enumerate(reply.tool_calls):
            # A tool_use block starts with empty input; its JSON follows in pieces, as the API streams it.
            block = {"type": "tool_use", "id": _call_id(chat, i), "name": name, "input": {}}
            emit("content_block_start", {"index": index, "content_block": block})
            text = _dumps(args)
            for at in range(0, len(text), 8):
                emit("content_block_delta", {"index": index,
                                             "delta": {"type": "input_json_delta", "partial_json": text[at:at + 8]}})
            emit("content_block_stop", {"index": index})
            index += 1
        emit(
            "message_delta",
            {
                "delta": {"stop_reason": _STOP[reply.finish], "stop_sequence": reply.stop_sequence},
                # usage on message_delta is cumulative, so it carries both counts
                "usage": {"input_tokens": chat.prompt_tokens(), "output_tokens": reply.completion_tokens},
            },
        )
        emit("message_stop", {})
        return "".join(events).encode()

    def error(self, status: int, message: str) -> bytes:
        """``{"type": "error", "error": {"type", "message"}}`` as the API sends it."""
        kind = _ERRORS.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return _dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()

    def stream_error(self, status: int, message: str) -> bytes:
        """An ``error`` event (such as ``overloaded_error``), as the API sends one mid-stream."""
        return b"event: error\ndata: " + self.error(status, message) + b"\n\n"

    def malformed(self, stream: bool) -> bytes:
        """Truncated JSON, as a body or inside a message_start event."""
        if stream:
            return b'event: message_start\ndata: {"type":"message_start","message":{"id":\n\n'
        return b'{"id":"msg_broken","type":"message","content":[{"type":"text",'


def _call_id(chat: Chat, index: int) -> str:
    return f"toolu_sbx{chat.digest()[:20]}{index}"


def _tool_results(content: Any) -> str | None:
    """The text of a user turn made of tool_result blocks; None for any other content."""
    if not isinstance(content, list) or not content:
        return None
    if not all(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
        return None
    return "\n".join(block_text(b.get("content")) for b in content)


def _tools(raw: Any, choice: Any) -> tuple[list[str], str | None]:
    """(names of the tools offered, the forced one: a name, "" for any, None)."""
    if raw is None:
        return [], None
    if not isinstance(raw, list):
        raise BadRequest("tools: must be a list")
    names = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise BadRequest(f"tools.{i}.name: Field required")
        if tool.get("type") in (None, "custom") and not isinstance(tool.get("input_schema"), dict):
            raise BadRequest(f"tools.{i}.input_schema: Field required")
        names.append(tool["name"])
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "none":
        return [], None
    if kind == "any":
        return names, ""
    if kind == "tool":
        return names, str(choice.get("name", ""))
    return names, None
