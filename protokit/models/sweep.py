"""``pk.sweep``: one model under several settings, as named models a comparison tells apart."""

from __future__ import annotations

import itertools
import json
from typing import Any

from protokit.errors import ConfigError
from protokit.models.base import Model

__all__ = ["sweep"]

_SWEPT = (list, tuple, range)
# Options whose own value is a list: a list of them is fixed, a list of lists is swept.
_LIST_VALUED = frozenset({"stop", "tools"})


def _is_swept(key: str, value: Any) -> bool:
    if not isinstance(value, _SWEPT):
        return False
    return key not in _LIST_VALUED or (bool(value) and all(isinstance(v, (list, tuple)) for v in value))


def _named(value: Any) -> str:
    return str(getattr(value, "__name__", None) or repr(value))  # a tool function, a pydantic schema class


def _show(value: Any) -> str:
    """A value as it reads in a model's name: ``0.7``, ``512``, ``"\\n"``, ``["get_weather"]``."""
    if isinstance(value, (bool, int, float)) or value is None:
        return str(value)
    if isinstance(value, type) or callable(value):
        return _named(value)
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=_named)
    except (TypeError, ValueError):
        return repr(value)


def sweep(spec: Any, *, name: str | None = None, **options: Any) -> list[Model]:
    """One named model per value of an option, or per combination of several (for ``models=``).

    ``pk.sweep("openai:gpt-4.1-mini", temperature=[0, 0.7, 1])`` is three models named
    ``gpt-4.1-mini temperature=0``, ``gpt-4.1-mini temperature=0.7`` and ``gpt-4.1-mini temperature=1``;
    with ``top_p=[0.5, 1]`` as well, six, one per combination (``itertools.product``, the first
    option varying slowest). Each is ``pk.model(spec, name=..., **its options)``, so in a comparison
    each setting is a candidate of its own, and its calls are cached apart.

    Parameters
    ----------
    spec
        ``"provider:name"`` or a callable, as for :func:`pk.model`.
    name
        The start of every name (default: the model's name, ``gpt-4.1-mini``; a callable's ``__name__``).
    **options
        An option given as a list, tuple or range is swept, one value per model; any other value
        (``base_url=``, ``api_key=``, ``price=``, ``max_tokens=300``) is the same for every model.
        ``stop`` and ``tools``, whose own values are lists, are swept only by a list of lists:
        ``tools=[get_weather]`` gives every model that tool, ``tools=[[], [get_weather]]`` tries both.
    """
    from protokit.models.registry import create

    if isinstance(spec, Model):
        raise ConfigError("pk.sweep takes a 'provider:name' spec or a function, not a built model; "
                          f"give its options to pk.sweep instead, e.g. pk.sweep({spec.spec!r}, temperature=[0, 1])")
    swept = {k: list(v) for k, v in options.items() if _is_swept(k, v)}
    fixed = {k: v for k, v in options.items() if k not in swept}
    if not swept:
        raise ConfigError("pk.sweep needs an option given as a list of values, e.g. "
                          "pk.sweep('openai:gpt-4.1-mini', temperature=[0, 0.7, 1])")
    for key, values in swept.items():
        if not values:
            raise ConfigError(f"pk.sweep: {key}=[] gives no value to try; list at least one")
        shown = [_show(v) for v in values]
        twice = next((s for s in shown if shown.count(s) > 1), None)
        if twice is not None:
            raise ConfigError(f"pk.sweep: {key} lists {twice} twice; each value makes one model")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigError(f"pk.sweep: name= must be a non-empty string, got {name!r}")
    if callable(spec):
        base = name or str(getattr(spec, "__name__", "fn"))
    elif isinstance(spec, str) and ":" in spec:
        base = name or spec.partition(":")[2]
    else:
        return [create(spec, **fixed)]  # not a spec: create() raises the error that says what one looks like
    models = []
    for combo in itertools.product(*swept.values()):
        settings = dict(zip(swept, combo, strict=True))
        label = " ".join([base, *(f"{k}={_show(v)}" for k, v in settings.items())])
        if callable(spec):  # a callable's name= is the function's own; label= names this setting
            models.append(create(spec, name=base, label=label, **fixed, **settings))
        else:
            models.append(create(spec, name=label, **fixed, **settings))
    return models
