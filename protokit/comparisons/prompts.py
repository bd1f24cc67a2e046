"""Prompts of a comparison: named variants, each case's prompt rendered from its columns, a text form to store.

A prompt is a template string, a list of chat messages whose contents are templates (a content
may be a list of parts: a text part's ``text`` and an image part's ``source`` are templates), a
function of the case, a ``{name: prompt}`` dict of variants of these, or None (each case's own
messages and turns, :mod:`protokit.comparisons.turns`). Every case's messages are checked here,
with the case named, so a bad role or a missing image file costs no call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from protokit.comparisons.turns import check_messages
from protokit.errors import ConfigError
from protokit.models.prompts import render_template, template_fields

__all__ = ["Prompt", "SinglePrompt", "describe_prompt", "image_columns", "prompt_variants", "render_prompts"]

SinglePrompt = str | Sequence[Mapping[str, Any]] | Callable[[dict[str, Any]], Any]
# None: each case is its own prompt, its `messages` and/or `turns` (protokit.comparisons.turns).
Prompt = SinglePrompt | Mapping[str, SinglePrompt] | None


def _templates(prompt: Any) -> list[str]:
    """The templates of a prompt: the string, or each message's content (a text part's text, an image's source)."""
    if isinstance(prompt, str):
        return [prompt]
    out: list[str] = []
    for m in prompt:
        content = m.get("content") or ""
        if isinstance(content, list):
            out += [str(p.get(_FILLED.get(str(p.get("type")), "text"), "")) for p in content if isinstance(p, Mapping)]
        else:
            out.append(str(content))
    return out


# The field of a content part that is a template: a text part's text, an image part's source (a path or URL).
_FILLED = {"text": "text", "image": "source"}


def _render_content(content: Any, values: Mapping[str, Any], what: str) -> Any:
    if content is None:  # an assistant turn that is only tool calls
        return None
    if not isinstance(content, list):
        return render_template(str(content), values, what=what)
    out = []
    for part in content:
        key = _FILLED.get(str(part.get("type"))) if isinstance(part, Mapping) else None
        if key is None or not isinstance(part.get(key), str):
            out.append(part)  # checked, with its case named, when the request is built
        else:
            out.append({**part, key: render_template(part[key], values, what=what)})
    return out


def image_columns(prompt: Any) -> list[str]:
    """The case columns a prompt's image parts take their source from (``{"source": "{photo}"}``: photo)."""
    prompts = list(prompt.values()) if isinstance(prompt, Mapping) else [prompt]
    names: list[str] = []
    for one in prompts:
        if isinstance(one, str) or callable(one) or not isinstance(one, Sequence):
            continue
        for m in one:
            content = m.get("content") if isinstance(m, Mapping) else None
            for part in content if isinstance(content, list) else ():
                if isinstance(part, Mapping) and part.get("type") == "image" and isinstance(part.get("source"), str):
                    try:
                        names += template_fields(part["source"])
                    except ConfigError:
                        continue
    return list(dict.fromkeys(names))


def prompt_variants(prompt: Any) -> dict[str, SinglePrompt] | None:
    """The named variants of a ``{name: prompt}`` dict (checked), or None for a single prompt."""
    if not isinstance(prompt, Mapping):
        return None
    if not prompt:
        raise ConfigError("prompt is an empty dict: give at least one variant, e.g. {'short': '{ticket}'}")
    variants: dict[str, SinglePrompt] = {}
    for name, value in prompt.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"prompt variants are named by non-empty strings, got {name!r}; "
                              "e.g. {'short': '{ticket}', 'polite': 'Please classify: {ticket}'}")
        if isinstance(value, Mapping):
            raise ConfigError(f"prompt variant {name!r} is a dict; a variant is a template string, a list of "
                              "messages or a function of the case")
        variants[name] = value
    return variants


def render_prompts(prompt: SinglePrompt, records: list[dict[str, Any]], columns: Sequence[str],
                   ids: Sequence[Any]) -> list[Any]:
    """Each case's prompt: a template filled from its columns, or what a callable returns."""
    if callable(prompt):
        out = []
        for cid, rec in zip(ids, records, strict=True):
            try:
                value = prompt(dict(rec))
            except Exception as exc:
                raise ConfigError(f"the prompt function failed on case {cid!r}: {type(exc).__name__}: {exc}") \
                    from exc
            if not isinstance(value, str):
                check_messages(value, cid)
            out.append(value)
        return out
    if not isinstance(prompt, str) and not (
            isinstance(prompt, Sequence) and all(isinstance(m, Mapping) for m in prompt) and prompt):
        raise ConfigError(f"prompt must be a template string, a list of messages, a function of the case or a "
                          f"dict of named variants of these, got {type(prompt).__name__}")
    templates = _templates(prompt)
    fields = [f for t in templates for f in template_fields(t)]
    missing = [f for f in dict.fromkeys(fields) if f not in columns]
    if missing:
        raise ConfigError(f"the prompt uses {{{missing[0]}}} but the cases have no column {missing[0]!r} "
                          f"(columns: {', '.join(columns)}); add the column or fix the template")
    if not fields:
        if not isinstance(prompt, str):
            check_messages(prompt, ids[0])
        return [prompt] * len(records)
    out = []
    for cid, rec in zip(ids, records, strict=True):
        values = {k: "" if v is None else v for k, v in rec.items()}
        what = f"the prompt for case {cid!r}"
        if isinstance(prompt, str):
            out.append(render_template(prompt, values, what=what))
        else:
            messages = [{**m, "content": _render_content(m.get("content", ""), values, what)} for m in prompt]
            check_messages(messages, cid)  # roles, tool calls, and each image file there: before any call
            out.append(messages)
    return out


def describe_prompt(prompt: Prompt) -> str:
    """A text form of the prompt to store with a run (a function is named, not pickled).

    Variants are stored as a JSON object of their names and text forms.
    """
    if isinstance(prompt, str):
        return prompt
    if prompt is None:
        return "<each case's messages and turns>"
    if isinstance(prompt, Mapping):
        return json.dumps({str(k): describe_prompt(v) for k, v in prompt.items()}, ensure_ascii=False)
    if callable(prompt):
        return f"<function {getattr(prompt, '__module__', '?')}.{getattr(prompt, '__qualname__', '?')}>"
    return json.dumps([dict(m) for m in prompt], ensure_ascii=False)
