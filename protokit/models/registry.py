"""The provider registry: ``provider:name`` -> a Model class.

Built-in providers register through the same entry-point group a third party
uses (``protokit.providers`` in its pyproject), so adding a provider never
means editing protokit. :func:`register` does the same from code.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
from collections.abc import Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

from protokit.errors import ConfigError
from protokit.models.base import Model

__all__ = ["ENTRY_POINT_GROUP", "get_provider", "providers", "register", "substituted"]

ENTRY_POINT_GROUP = "protokit.providers"
_registered: dict[str, type[Model]] = {}
# Known but not yet imported: a provider's SDK is imported only when it is used.
_pending: dict[str, str] = {}
_scanned = False

# Used when protokit runs from a source tree without installed metadata.
_BUILTIN = {
    "openai": "protokit.models.openai_adapter:OpenAIModel",
    "anthropic": "protokit.models.anthropic_adapter:AnthropicModel",
}


def register(provider: str, cls: type[Model]) -> None:
    """Register a Model subclass under a provider prefix (overrides an existing one)."""
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise ConfigError(f"provider {provider!r} must be a subclass of protokit.models.Model, got {cls!r}")
    _registered[provider] = cls
    _pending.pop(provider, None)


def _scan() -> None:
    global _scanned
    if _scanned:
        return
    _scanned = True
    for name, target in _BUILTIN.items():
        _pending.setdefault(name, target)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _registered:
            _pending[ep.name] = ep.value


def providers() -> list[str]:
    """Names of every known provider prefix."""
    _scan()
    return sorted(set(_registered) | set(_pending))


def get_provider(name: str) -> type[Model]:
    """The Model class for a provider prefix; an unknown one is a ConfigError listing the known ones."""
    _scan()
    if name in _registered:
        return _registered[name]
    target = _pending.get(name)
    if target is None:
        raise ConfigError(
            f"unknown provider {name!r}; known providers: {', '.join(providers())} "
            "(a plugin adds one through the 'protokit.providers' entry point)"
        )
    module, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except Exception as exc:  # a broken plugin must say which one it is
        raise ConfigError(f"provider plugin {name!r} ({target}) failed to load: {exc}") from exc
    register(name, cls)
    return cls


_substitutes: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("protokit_substitutes",
                                                                                      default=None)


@contextlib.contextmanager
def substituted(replacements: Mapping[str, str]) -> Iterator[None]:
    """Inside the block, a model asked for as ``"provider:name"`` OLD is built as NEW instead.

    ``{"openai:gpt-4.1-mini": "anthropic:claude-haiku-4-5"}`` swaps one model; the key ``"*"``
    swaps every model asked for by name. ``protokit drift --model`` tries a replacement on a
    promoted module this way, without editing it. Models built before the block are unchanged.
    """
    for old, new in replacements.items():
        if not isinstance(new, str) or ":" not in new or (old != "*" and ":" not in old):
            raise ConfigError(f"a replacement model must be 'provider:name' for 'provider:name' (or '*'), "
                              f"got {old!r} -> {new!r}")
    token = _substitutes.set({**(_substitutes.get() or {}), **replacements})
    try:
        yield
    finally:
        _substitutes.reset(token)


def create(spec: Any, **kwargs: Any) -> Model:
    """Build a Model from ``provider:name``, a callable or an existing Model."""
    from protokit.models.callable_adapter import CallableModel

    if isinstance(spec, Model):
        if kwargs:
            raise ConfigError("pk.model(existing_model, ...) takes no options; build a new model instead")
        return spec
    if callable(spec):
        return CallableModel(spec, **kwargs)
    if not isinstance(spec, str) or ":" not in spec:
        raise ConfigError(
            f"model spec {spec!r:.60} should look like 'provider:name' (e.g. 'openai:gpt-4.1-mini'); "
            f"known providers: {', '.join(providers())}"
        )
    subs = _substitutes.get()
    if subs:
        spec = subs.get(spec, subs.get("*", spec))
    provider, _, name = spec.partition(":")
    # name= labels this candidate ("mini-hot"); the provider is still asked for `name`.
    label = kwargs.pop("name", None)
    return get_provider(provider)(name, label=label, **kwargs)
