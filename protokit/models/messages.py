"""Chat messages in protokit's neutral form: checked once, the same for every provider.

``{"role", "content"}`` with roles ``system``, ``user``, ``assistant`` and ``tool``; a user
message's content may be a list of text and image parts (:mod:`protokit.models.images`). An
assistant message may carry ``tool_calls`` and a ``tool`` message answers one by ``tool_call_id``
(the shape :func:`protokit.models.tools.run_tools` builds). Each adapter turns these into its
provider's wire form; every request, a fallback member's rebuilt one included, goes through here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from protokit.errors import ConfigError
from protokit.models import images
from protokit.models.tools import arguments_from_json

__all__ = ["Message", "Prompt", "normalize_messages"]

# {"role", "content"}; inside a tool loop an assistant message may carry "tool_calls" and a
# "tool" message "tool_call_id" and "name" (see protokit.models.tools).
Message = dict[str, Any]
Prompt = str | Sequence[Mapping[str, Any]]


def normalize_messages(prompt: Prompt, system: str | None = None) -> tuple[Message, ...]:
    """Turn a string or a list of chat messages into a tuple of ``{"role", "content"}`` dicts.

    Roles are ``system``, ``user``, ``assistant`` and ``tool``. A user message's content may be a
    list of text and image parts (:mod:`protokit.models.images`; a missing image file is a
    ConfigError here). An assistant message may carry ``tool_calls`` (``[{"id", "name",
    "arguments"}]``, or OpenAI's ``{"id", "function": {"name", "arguments": JSON}}``), and a ``tool``
    message answers one of them by ``tool_call_id``: a conversation with tool calls, or a tool loop's
    steps rebuilt (by a fallback's members) are checked the same way.
    """
    if isinstance(prompt, str):
        messages: list[Message] = [{"role": "user", "content": prompt}]
    elif isinstance(prompt, Sequence):
        messages = []
        called: set[str] = set()  # ids of the tool calls made so far, which a tool message answers
        for i, m in enumerate(prompt):
            if not isinstance(m, Mapping) or "role" not in m or ("content" not in m and not m.get("tool_calls")):
                raise ConfigError(
                    f"message {i} must be a dict with 'role' and 'content', got {m!r:.80}"
                )
            messages.append(_message(m, i, called))
        if not messages:
            raise ConfigError("the prompt is an empty list of messages; give a string or at least one message")
    else:
        raise ConfigError(f"a prompt must be a string or a list of messages, got {type(prompt).__name__}")
    if system is not None:
        if messages[0]["role"] == "system":
            raise ConfigError("system= was given and the messages already start with a system message; use one")
        messages.insert(0, {"role": "system", "content": system})
    return tuple(messages)


def _message(m: Mapping[str, Any], i: int, called: set[str]) -> Message:
    """One message checked and in protokit's neutral form (see :func:`normalize_messages`)."""
    role = m["role"]
    if role not in ("system", "user", "assistant", "tool"):
        raise ConfigError(f"message {i} has role {role!r}; use 'system', 'user', 'assistant' or 'tool'")
    content = m.get("content")
    calls = m.get("tool_calls") if role == "assistant" else None
    if calls and content is None:
        content = ""  # an assistant turn that is only tool calls
    message: Message = {"role": role, "content": images.check_content(content, role, f"message {i}")}
    if calls:
        message["tool_calls"] = [_tool_call(c, i) for c in calls]
        called.update(c["id"] for c in message["tool_calls"])
    if role == "tool":
        call_id, name = m.get("tool_call_id"), m.get("name")
        if not isinstance(call_id, str) or call_id not in called:
            raise ConfigError(f"message {i} is a tool result for tool call {call_id!r}, which no earlier assistant "
                              "message made; give the assistant's tool_calls first, each with an 'id'")
        message["tool_call_id"] = call_id
        if name is not None:
            if not isinstance(name, str):
                raise ConfigError(f"message {i}: a tool message's 'name' must be a string")
            message["name"] = name
    return message


def _tool_call(call: Any, i: int) -> dict[str, Any]:
    """An assistant message's tool call as ``{"id", "name", "arguments"}`` (OpenAI's shape read too)."""
    if isinstance(call, Mapping) and isinstance(call.get("function"), Mapping):  # {"id", "type", "function"}
        arguments = call["function"].get("arguments")
        call = {"id": call.get("id"), "name": call["function"].get("name"),
                "arguments": arguments_from_json(arguments) if isinstance(arguments, str) else arguments}
    if not (isinstance(call, Mapping) and isinstance(call.get("id"), str) and isinstance(call.get("name"), str)
            and isinstance(call.get("arguments", {}), Mapping)):
        raise ConfigError(f"message {i}: each tool call must be {{'id': str, 'name': str, 'arguments': dict}}, "
                          f"got {call!r:.80}")
    return {"id": call["id"], "name": call["name"], "arguments": dict(call.get("arguments") or {})}
