"""Scripted models: per-model regex rules that pick a reply, for demos of models of varied quality.

A script is YAML or JSON::

    models:
      sim-large:
        latency: 0.4              # optional extra seconds, or "MIN:MAX"
        rules:
          - match: "(?i)refund|charge"   # searched in the last user message
            system: "support"            # optional, searched in the system prompt
            reply: "billing"
          - match: "order (?P<num>\\d+)"
            reply: "order {num}"         # {0} whole match, {1} first group, {name} named group
          - reply: "other"               # no match/system: always applies

The first rule whose regexes all match wins; no match, or a model not in the
script, falls back to the default reply.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from protokit.errors import SandboxError
from protokit.sandbox.config import parse_latency
from protokit.sandbox.replies import Chat

__all__ = ["ModelScript", "Rule", "Script", "load_script"]

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_RULE_KEYS = frozenset({"match", "system", "reply"})
_MODEL_KEYS = frozenset({"latency", "rules"})

# Builds the one-line error for a place in the file (e.g. "models.x.rules[0]") and a problem.
_Fail = Callable[[str, str], SandboxError]


@dataclass(frozen=True)
class Rule:
    """One rule: regexes to search and the reply template used when they match."""

    match: re.Pattern[str] | None
    system: re.Pattern[str] | None
    reply: str
    templated: bool

    def apply(self, chat: Chat) -> str | None:
        """The reply for ``chat`` if this rule matches it, else None."""
        if self.system is not None and self.system.search(chat.system) is None:
            return None
        if self.match is None:
            return self.reply
        found = self.match.search(chat.last_user_text())
        if found is None:
            return None
        if not self.templated:
            return self.reply

        def group(ref: re.Match[str]) -> str:
            key = ref.group(1)
            return found.group(int(key) if key.isdigit() else key) or ""

        return _PLACEHOLDER.sub(group, self.reply)


@dataclass(frozen=True)
class ModelScript:
    """The rules and extra latency of one scripted model."""

    latency: tuple[float, float]
    rules: tuple[Rule, ...]

    def reply(self, chat: Chat) -> str | None:
        """The first matching rule's reply, or None to use the default reply."""
        for rule in self.rules:
            text = rule.apply(chat)
            if text is not None:
                return text
        return None


@dataclass(frozen=True)
class Script:
    """All scripted models, by name."""

    source: str
    models: dict[str, ModelScript]


def load_script(path: str | Path) -> Script:
    """Read and validate a script file; any problem is one-line SandboxError naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SandboxError(f"script {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SandboxError(f"script {path}: cannot read it ({exc})") from None
    try:
        data = yaml.safe_load(text)  # YAML is a superset of JSON, so one parser serves both
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SandboxError(f"script {path}: not valid YAML or JSON{where}: {problem}") from None
    return parse_script(data, str(path))


def parse_script(data: Any, source: str) -> Script:
    """Build a :class:`Script` from already-parsed data; ``source`` names it in errors."""

    def fail(where: str, problem: str) -> SandboxError:
        return SandboxError(f"script {source}: {where}: {problem}")

    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise SandboxError(f"script {source}: expected a mapping with a 'models' mapping at the top")
    models: dict[str, ModelScript] = {}
    for name, spec in data["models"].items():
        where = f"models.{name}"
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise fail(where, "expected a mapping with 'rules' and optional 'latency'")
        unknown = set(spec) - _MODEL_KEYS
        if unknown:
            raise fail(where, f"unknown key {sorted(unknown)[0]!r}; allowed: latency, rules")
        try:
            latency = parse_latency(spec.get("latency", 0.0))
        except SandboxError as exc:
            raise fail(f"{where}.latency", str(exc)) from None
        raw_rules = spec.get("rules", [])
        if not isinstance(raw_rules, list):
            raise fail(f"{where}.rules", "expected a list of rules")
        rules = tuple(_parse_rule(rule, f"{where}.rules[{i}]", fail) for i, rule in enumerate(raw_rules))
        models[str(name)] = ModelScript(latency=latency, rules=rules)
    return Script(source=source, models=models)


def _parse_rule(raw: Any, where: str, fail: _Fail) -> Rule:
    if not isinstance(raw, dict):
        raise fail(where, "expected a mapping with 'reply' and optional 'match'/'system'")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise fail(where, f"unknown key {sorted(unknown)[0]!r}; allowed: match, system, reply")
    reply = raw.get("reply")
    if not isinstance(reply, str):
        raise fail(where, "'reply' must be a string")
    match = _compile(raw.get("match"), f"{where}.match", fail)
    system = _compile(raw.get("system"), f"{where}.system", fail)
    refs = _PLACEHOLDER.findall(reply)
    for ref in refs:
        if match is None:
            raise fail(where, f"reply uses {{{ref}}} but the rule has no 'match' regex")
        ok = int(ref) <= match.groups if ref.isdigit() else ref in match.groupindex
        if not ok:
            raise fail(where, f"reply uses {{{ref}}} but 'match' has no such group")
    return Rule(match=match, system=system, reply=reply, templated=bool(refs))


def _compile(pattern: Any, where: str, fail: _Fail) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    if not isinstance(pattern, str):
        raise fail(where, "expected a regex string")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise fail(where, f"bad regex {pattern!r}: {exc}") from None
