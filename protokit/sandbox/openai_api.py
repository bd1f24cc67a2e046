"""The OpenAI chat-completions wire format (``POST /v1/chat/completions``)."""

from __future__ import annotations

import json
import time
from typing import Any

from protokit.sandbox.replies import BadRequest, Chat, Reply, block_text, split_pieces

__all__ = ["OpenAIDialect"]

_FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length", "tool_use": "tool_calls", "refusal": "stop"}
_ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", None),
    529: ("server_error", "overloaded"),
}
_SYSTEM_ROLES = frozenset({"system", "developer"})


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class OpenAIDialect:
    """Parses chat-completion requests and renders replies the ``openai`` SDK accepts."""

    name = "openai"

    def parse(self, body: Any) -> Chat:
        """Turn a chat-completions body into a :class:`Chat`."""
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' is required and must be a string")
        raw = body.get("messages")
        if not isinstance(raw, list) or not raw:
            raise BadRequest("'messages' must be a non-empty list")
        system: list[str] = []
        messages: list[tuple[str, str]] = []
        for i, msg in enumerate(raw):
            if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
                raise BadRequest(f"messages[{i}] must be an object with a 'role'")
            text = block_text(msg.get("content"))
            if msg["role"] in _SYSTEM_ROLES:
                system.append(text)
            else:
                messages.append((msg["role"], text))
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise BadRequest("'max_tokens' must be a positive integer")
        stop = body.get("stop")
        stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
        if not all(isinstance(s, str) for s in stops):
            raise BadRequest("'stop' must be a string or a list of strings")
        n = body.get("n") or 1
        if not isinstance(n, int) or not 1 <= n <= 128:
            raise BadRequest("'n' must be an integer from 1 to 128")
        options = body.get("stream_options")
        tools, forced = _tools(body.get("tools"), body.get("tool_choice"))
        return Chat(
            model=model,
            system="\n".join(system),
            messages=messages,
            max_tokens=max_tokens,
            stop=stops,
            stream=bool(body.get("stream")),
            include_usage=isinstance(options, dict) and bool(options.get("include_usage")),
            n=n,
            tools=tools,
            forced=forced,
        )

    def _usage(self, chat: Chat, reply: Reply) -> dict[str, int]:
        prompt = chat.prompt_tokens()
        completion = reply.completion_tokens * chat.n
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def render(self, chat: Chat, reply: Reply) -> bytes:
        """A ``chat.completion`` object; ``n`` choices carry the same (deterministic) text or tool calls."""
        message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
        if reply.finish == "refusal":  # the explanation, in its own field, and no content
            message.update(content=None, refusal=reply.text)
        if reply.tool_calls:
            message["content"] = reply.text or None
            message["tool_calls"] = [
                {"id": _call_id(chat, i), "type": "function", "function": {"name": name, "arguments": _dumps(args)}}
                for i, (name, args) in enumerate(reply.tool_calls)]
        finish = _FINISH[reply.finish]
        body = {
            "id": f"chatcmpl-{chat.digest()[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": chat.model,
            "choices": [
                {"index": i, "message": message, "logprobs": None, "finish_reason": finish} for i in range(chat.n)
            ],
            "usage": self._usage(chat, reply),
            "system_fingerprint": "fp_sandbox",
        }
        return _dumps(body).encode()

    def render_stream(self, chat: Chat, reply: Reply) -> bytes:
        """``chat.completion.chunk`` events: role, one per word, finish, optional usage, ``[DONE]``."""
        head = {
            "id": f"chatcmpl-{chat.digest()[:24]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": chat.model,
            "system_fingerprint": "fp_sandbox",
        }
        if chat.include_usage:
            head["usage"] = None  # the API sends null on every chunk but the last when usage is asked for
        prefix = _dumps(head)[:-1] + ',"choices":'
        lines: list[str] = []

        def emit(choices: list[dict[str, Any]]) -> None:
            lines.append(f"data: {prefix}{_dumps(choices)}}}\n\n")

        for i in range(chat.n):
            emit(
                [
                    {
                        "index": i,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ]
            )
            field = "refusal" if reply.finish == "refusal" else "content"
            for piece in split_pieces(reply.text):
                emit([{"index": i, "delta": {field: piece}, "logprobs": None, "finish_reason": None}])
            for k, (name, args) in enumerate(reply.tool_calls):
                # The call's id and name first, then its arguments' JSON in pieces, as the API streams them.
                start = {"index": k, "id": _call_id(chat, k), "type": "function",
                         "function": {"name": name, "arguments": ""}}
                emit([{"index": i, "delta": {"tool_calls": [start]}, "logprobs": None, "finish_reason": None}])
                text = _dumps(args)
                for at in range(0, len(text), 8):
                    part = {"index": k, "function": {"arguments": text[at:at + 8]}}
                    emit([{"index": i, "delta": {"tool_calls": [part]}, "logprobs": None, "finish_reason": None}])
            emit([{"index": i, "delta": {}, "logprobs": None, "finish_reason": _FINISH[reply.finish]}])
        if chat.include_usage:
            last = dict(head, choices=[], usage=self._usage(chat, reply))
            lines.append(f"data: {_dumps(last)}\n\n")
        lines.append("data: [DONE]\n\n")
        return "".join(lines).encode()

    def error(self, status: int, message: str) -> bytes:
        """``{"error": {"message", "type", "param", "code"}}`` as the API sends it."""
        kind, code = _ERRORS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
        return _dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()

    def stream_error(self, status: int, message: str) -> bytes:
        """``data: {"error": {...}}``: how the API reports a failure after the stream has started."""
        return b"data: " + self.error(status, message) + b"\n\n"

    def malformed(self, stream: bool) -> bytes:
        """Truncated JSON, as a body or as one SSE event."""
        if stream:
            return b'data: {"id":"chatcmpl-broken","object":"chat.completion.chunk","choices":[{\n\n'
        return b'{"id":"chatcmpl-broken","object":"chat.completion","choices":[{"index":0,'


def _call_id(chat: Chat, index: int) -> str:
    return f"call_{chat.digest()[:20]}{index}"


def _tools(raw: Any, choice: Any) -> tuple[list[str], str | None]:
    """(names of the function tools offered, the forced one: a name, "" for required, None)."""
    if raw is None:
        return [], None
    if not isinstance(raw, list):
        raise BadRequest("'tools' must be a list")
    names = []
    for i, tool in enumerate(raw):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadRequest(f"tools[{i}] must be {{'type': 'function', 'function': {{'name': ...}}}}")
        names.append(function["name"])
    if choice == "none":
        return [], None
    if choice == "required":
        return names, ""
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return names, str(choice["function"].get("name", ""))
    return names, None
