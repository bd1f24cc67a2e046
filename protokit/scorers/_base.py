"""The Scorer base class, the Score a scorer gives, wrapping of plain callables, and rebuilding a
built-in scorer from what a stored run kept of it."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec

from protokit import _aio
from protokit.errors import ConfigError, ProtokitError, ScorerTypeError

# ScorerTypeError lives in protokit.errors with every other error; still importable from here.
__all__ = ["FunctionScorer", "Score", "Scorer", "ScorerTypeError", "as_scorer", "custom", "rebuild", "rebuildable",
           "to_score"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
READS = ("output", "tool_calls", "parsed")  # what of an answer a scorer may score


@dataclass(frozen=True)
class Score:
    """A scorer's verdict on one output: a value (higher is better), a reason, a cost."""

    value: float | None
    reason: str | None = None
    cost_usd: float | None = None
    cached: bool = False  # a replayed judge answer: its cost was paid when it was recorded


def to_score(result: Any, name: str) -> Score:
    """Normalise a scorer's return value (bool, number, dict or Score) to a Score."""
    if isinstance(result, Score):
        return result
    reason = None
    cost = None
    value = result
    if isinstance(result, Mapping):
        if "score" not in result:
            raise ScorerTypeError(f"scorer {name!r} returned a dict without 'score'; "
                                  "return {'score': float, 'reason': str}")
        value = result["score"]
        reason = None if result.get("reason") is None else str(result["reason"])
        cost = result.get("cost_usd")
    if isinstance(value, bool):
        return Score(1.0 if value else 0.0, reason, cost)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if math.isnan(number):
            raise ScorerTypeError(f"scorer {name!r} returned NaN; return a number, a bool or a dict")
        return Score(number, reason, cost)
    # numpy scalars and the like expose __float__; strings do not count as numbers here.
    if hasattr(value, "__float__") and not isinstance(value, (str, bytes)):
        return to_score(float(value), name) if reason is None else Score(float(value), reason, cost)
    raise ScorerTypeError(f"scorer {name!r} returned {type(value).__name__}; "
                          "return a bool, a number or {'score': ..., 'reason': ...}")


def check_name(name: str) -> str:
    """A scorer name becomes a column name (``score_<name>``): letters, digits and underscores only."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"scorer name {name!r} must be letters, digits and underscores (it names the "
                          f"column score_<name>); pass name='...'")
    return name


class Scorer:
    """Scores one output against its case; subclass and implement :meth:`score` (or :meth:`ascore`).

    ``columns`` names the case columns it reads (checked before any call is made),
    ``reasons`` says whether it gives a ``reason_<name>`` column, ``is_async``
    whether compare must await :meth:`ascore` (a judge calls a model). ``reads`` names what
    of the answer it scores: ``output`` (the text), ``tool_calls`` or ``parsed`` (``schema=``).
    """

    is_async: bool = False
    reads: str = "output"
    # How a built-in factory made it ({"scorer": factory name, "args": {...}}), set by @rebuildable.
    recipe: dict[str, Any] | None = None

    def __init__(self, name: str, *, columns: Sequence[str] = (), reasons: bool = False) -> None:
        self.name = check_name(name)
        self.columns = tuple(columns)
        self.reasons = reasons

    def __repr__(self) -> str:
        cols = f" on {', '.join(self.columns)}" if self.columns else ""
        return f"<scorer {self.name}{cols}>"

    def score(self, output: str, case: Mapping[str, Any]) -> Any:
        """Score ``output`` for ``case``: a bool, a number, a dict or a :class:`Score`."""
        raise NotImplementedError

    async def ascore(self, output: str, case: Mapping[str, Any]) -> Any:
        """Async form of :meth:`score` (the default runs :meth:`score`)."""
        return self.score(output, case)

    def __call__(self, output: str, case: Mapping[str, Any] | None = None) -> Score:
        """Score one output outside a comparison (handy in notebooks and tests)."""
        case = case or {}
        if self.is_async:
            return to_score(_aio.run_sync(self.ascore(output, case)), self.name)
        return to_score(self.score(output, case), self.name)

    def describe(self) -> dict[str, Any]:
        """What is stored about this scorer with a run: its name, kind and columns, and for a built-in
        one made of plain values, its recipe (so ``protokit runs resume`` can make it again)."""
        info: dict[str, Any] = {"name": self.name, "kind": type(self).__name__, "columns": list(self.columns)}
        # An argument that is no plain value (a model object, a function): no recipe.
        with contextlib.suppress(TypeError, ValueError):
            if self.recipe is not None:
                info["recipe"] = json.loads(json.dumps(self.recipe, allow_nan=False))
        return info


class FunctionScorer(Scorer):
    """A user function ``fn(output, case)`` or ``fn(output)`` returning bool, float or a dict."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None,
                 columns: Sequence[str] = (), reads: str = "output") -> None:
        if not callable(fn):
            raise ConfigError(f"a scorer must be a pk.scorers.* object or a callable, got {fn!r:.60}")
        if reads not in READS:
            raise ConfigError(f"reads= must be one of {', '.join(READS)}, got {reads!r}")
        self.reads = reads
        if name is None:
            name = getattr(fn, "__name__", "") or ""
            if not _NAME.match(name):  # a lambda or a callable object
                name = "custom"
        super().__init__(name, columns=columns, reasons=True)
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        self._one_arg = _takes_one_arg(fn)

    def score(self, output: str, case: Mapping[str, Any]) -> Any:
        """Call the function."""
        return self.fn(output) if self._one_arg else self.fn(output, case)

    async def ascore(self, output: str, case: Mapping[str, Any]) -> Any:
        """Call (and await) the function."""
        result = self.fn(output) if self._one_arg else self.fn(output, case)
        return await result if inspect.isawaitable(result) else result


def _takes_one_arg(fn: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) == 1


def custom(fn: Callable[..., Any], *, name: str | None = None, columns: Sequence[str] = (),
           reads: str = "output") -> Scorer:
    """Any function ``(output, case) -> bool | float | {"score", "reason"}`` as a named scorer.

    ``reads="parsed"`` (or ``"tool_calls"``) gives it that results column instead of the text.
    """
    return FunctionScorer(fn, name=name, columns=columns, reads=reads)


P = ParamSpec("P")
_FACTORIES: dict[str, Callable[..., Scorer]] = {}


def rebuildable(factory: Callable[P, Scorer]) -> Callable[P, Scorer]:
    """Mark a built-in scorer factory: what it makes keeps its recipe (the factory's name and arguments),
    so a stored run can make the same scorer again (:func:`rebuild`)."""
    signature = inspect.signature(factory)

    @functools.wraps(factory)
    def make(*args: P.args, **kwargs: P.kwargs) -> Scorer:
        scorer = factory(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()  # the arguments it was made with, not the defaults of a later version
        given: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                given.update(value)
            else:
                given[name] = value
        scorer.recipe = {"scorer": factory.__name__, "args": given}
        return scorer

    _FACTORIES[factory.__name__] = make
    return make


def rebuild(info: Mapping[str, Any]) -> Scorer | None:
    """The scorer a stored run describes (``Scorer.describe()``), made again; None when it cannot be:
    the user's own function or object, or a run stored before scorers kept their recipe."""
    recipe = info.get("recipe")
    factory = _FACTORIES.get(str(recipe.get("scorer"))) if isinstance(recipe, Mapping) else None
    args = recipe.get("args") if isinstance(recipe, Mapping) else None
    if factory is None or not isinstance(args, Mapping):
        return None
    try:
        scorer = factory(**args)
    except (ProtokitError, TypeError, ValueError):  # an argument this version no longer takes, a key missing
        return None
    # Only the same scorer: what it says of itself must be what the run stored.
    return scorer if json.loads(json.dumps(scorer.describe())) == json.loads(json.dumps(info)) else None


def as_scorer(obj: Any) -> Scorer:
    """A Scorer as is; a callable wrapped with :func:`custom`; anything else is a ConfigError."""
    if isinstance(obj, Scorer):
        return obj
    if isinstance(obj, str):
        raise ConfigError(f"scorer {obj!r} is a string; use a scorer such as pk.scorers.exact({obj!r})")
    return FunctionScorer(obj)
