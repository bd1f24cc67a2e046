"""``pk.expect(output, op, value)``: a gate on a declared output, kept for the generated tests.

In a notebook the gate is checked at once against the value last given to
``pk.output`` under that name: a failure raises :class:`ExpectationFailed`, so
``protokit run`` and validation fail and such a run never becomes a golden case.
The gate is displayed with its own MIME type, so promote reads it from the executed
notebook and writes it into the golden data, where the generated tests assert it for
every case (and drift checks against live models later). Inside a promoted module's
``run()`` a failing gate is logged, not raised: production code returns its result.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from protokit.errors import ConfigError, ExpectationFailed
from protokit.notebook.outputs import bundles_in, collecting, declared, encode_value

__all__ = ["EXPECT_MIME", "OPS", "check_expectations", "expect", "expectations_in", "failure"]

EXPECT_MIME = "application/vnd.protokit.expect+json"
OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq, "!=": operator.ne,
}
_ORDERED = frozenset({">=", ">", "<=", "<"})
log = logging.getLogger("protokit")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def failure(name: str, op: str, value: Any, actual: Any) -> str | None:
    """None when ``actual op value`` holds, else one line saying what was expected and found."""
    if op in _ORDERED and not _number(actual):
        return f"{name} = {actual!r} is not a number, expected {op} {value!r}"
    left = actual if op in _ORDERED else encode_value(actual, name)
    if OPS[op](left, value):
        return None
    return f"{name} = {actual!r}, expected {op} {value!r}"


def expect(name: str, op: str, value: Any) -> bool:
    """Gate a declared output: ``pk.expect("accuracy", ">=", 0.9)``. Returns whether it holds.

    ``op`` is one of ``>= > <= < == !=``; ordering needs a number on both sides. The
    output must have been declared with ``pk.output(name, ...)`` before. In a notebook a
    failing gate raises ExpectationFailed; inside a promoted run() it is logged.
    """
    where = f"pk.expect({name!r}, {op!r}, {value!r})"
    if op not in OPS:
        raise ConfigError(f"{where}: the operator must be one of {' '.join(OPS)}")
    if op in _ORDERED and not _number(value):
        raise ConfigError(f"{where}: {op} needs a finite number to compare with")
    encoded = encode_value(value, where)
    try:
        actual = declared(name)
    except KeyError:
        raise ConfigError(f"{where}: no output named {name!r} yet; declare it first with "
                          f"pk.output({name!r}, value)") from None
    problem = failure(name, op, encoded, actual)
    if collecting():  # inside a promoted module's run(): production returns its result

        if problem:
            log.warning("expectation failed: %s", problem)
        return problem is None
    _display(name, op, encoded, problem)
    if problem:
        raise ExpectationFailed(f"{where} failed: {problem}; fix the notebook or relax the gate")
    return True


def _display(name: str, op: str, value: Any, problem: str | None) -> None:
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: nothing to display to
        return
    if get_ipython() is None:
        return
    from IPython.display import display

    text = f"expect {name} {op} {value!r}: " + (f"FAILED ({problem})" if problem else "holds")
    display({EXPECT_MIME: {"name": name, "op": op, "value": value}, "text/plain": text}, raw=True)


def expectations_in(cells: Iterable[Any]) -> list[dict[str, Any]]:
    """The gates displayed in these cells' outputs, each once, in notebook order."""
    found: list[dict[str, Any]] = []
    for d in bundles_in(cells, EXPECT_MIME):
        gate = {"name": d.get("name"), "op": d.get("op"), "value": d.get("value")}
        if isinstance(gate["name"], str) and gate["op"] in OPS and gate not in found:
            found.append(gate)
    return found


def check_expectations(gates: Iterable[Mapping[str, Any]], outputs: Mapping[str, Any]) -> list[str]:
    """What fails among ``gates`` for run()'s ``outputs`` (empty when every gate holds)."""
    problems = []
    for gate in gates:
        name, op, value = gate["name"], gate["op"], gate["value"]
        if name not in outputs:
            problems.append(f"pk.expect({name!r}, ...): run() returned no output {name!r}")
            continue
        problem = failure(name, op, value, outputs[name])
        if problem:
            problems.append(f"pk.expect({name!r}, {op!r}, {value!r}): {problem}")
    return problems
