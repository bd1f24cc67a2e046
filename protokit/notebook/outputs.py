"""``pk.output(name, value)``: what a notebook produces, stored so promote can test it.

In a notebook the value is displayed with two representations: ``text/plain``
for people and :data:`MIME` (``{"name", "value"}`` JSON) for protokit, so the
executed ``.ipynb`` carries every declared output. In a promoted module the same
calls land in the dict ``run()`` returns, through :func:`collect_outputs`.

Values are stored in an *encoded* JSON form: plain JSON stays as it is, and the
rest is tagged with a ``"$pk"`` key (non-finite floats, DataFrames and Series in
``orient="split"`` form with their dtypes). Comparison happens on that form, so
a value read back from a notebook and a value computed by a module compare alike:
numbers within a tolerance (the one ``pk.output(..., rel_tol=, abs_tol=)`` declared, else a
relative 1e-6), frames and series by their values through :mod:`pandas.testing`.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

from protokit.errors import ConfigError

__all__ = [
    "MIME",
    "REL_TOL",
    "assert_outputs_equal",
    "bundles_in",
    "collect_outputs",
    "collecting",
    "declared",
    "decode_value",
    "diff_outputs",
    "diff_values",
    "encode_value",
    "output",
    "outputs_in",
    "printed_in",
    "tolerances_in",
]

T = TypeVar("T")
MIME = "application/vnd.protokit.output+json"
REL_TOL = 1e-6
_ABS_TOL = 1e-12
_TAG = "$pk"
_sink: ContextVar[dict[str, Any] | None] = ContextVar("protokit_outputs", default=None)
# The outputs declared so far outside a run() (a notebook's kernel), for pk.expect to look up.
_declared: dict[str, Any] = {}


def _tolerance(rel_tol: float | None, abs_tol: float | None, where: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for key, value in (("rel", rel_tol), ("abs", abs_tol)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{where}: {key}_tol must be a number >= 0, got {value!r}")
        found[key] = float(value)
    return found


def output(name: str, value: T, *, rel_tol: float | None = None, abs_tol: float | None = None) -> T:
    """Declare a notebook output: returns ``value``, shows it, and stores it for promote.

    ``rel_tol``/``abs_tol`` say how far a number (or the numbers inside a list, dict or
    frame) may move in the generated tests and drift checks, as in :func:`math.isclose`;
    without them numbers must agree to a relative 1e-6.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"pk.output() needs a name that is a Python identifier, got {name!r}")
    where = f"pk.output({name!r})"
    tolerance = _tolerance(rel_tol, abs_tol, where)
    encoded = encode_value(value, where=where)
    sink = _sink.get()
    if sink is not None:
        sink[name] = value  # inside a promoted module's run(): collect, show nothing
        return value
    _declared[name] = value
    _display(name, value, encoded, tolerance)
    return value


def collecting() -> bool:
    """True inside a promoted module's run(), where outputs are collected rather than shown."""
    return _sink.get() is not None


def declared(name: str) -> Any:
    """The value last declared with ``pk.output(name, ...)`` in this run() or kernel; KeyError if none."""
    sink = _sink.get()
    return (sink if sink is not None else _declared)[name]


def _display(name: str, value: Any, encoded: Any, tolerance: dict[str, float]) -> None:
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python without IPython: nothing to display to
        return
    if get_ipython() is None:
        return
    from IPython.display import display

    data: dict[str, Any] = {"name": name, "value": encoded}
    if tolerance:
        data["tolerance"] = tolerance
    display({MIME: data, "text/plain": _plain(name, value)}, raw=True)


def _plain(name: str, value: Any) -> str:
    text = repr(value)
    return f"{name} =\n{text}" if "\n" in text else f"{name} = {text}"


@contextlib.contextmanager
def collect_outputs() -> Iterator[dict[str, Any]]:
    """Collect ``pk.output`` calls made inside the block into the yielded dict."""
    sink: dict[str, Any] = {}
    token = _sink.set(sink)
    try:
        yield sink
    finally:
        _sink.reset(token)


# -- the encoded form -------------------------------------------------------------
def encode_value(value: Any, where: str = "value") -> Any:
    """The JSON form protokit stores for a value; ConfigError for types it cannot store."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {_TAG: "float", "value": repr(value)}
    if isinstance(value, (list, tuple)):
        return [encode_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where}: dict keys must be strings to be stored, got {k!r}")
            out[k] = encode_value(v, f"{where}[{k!r}]")
        # A user dict that happens to hold our tag key is wrapped so decoding cannot mistake it.
        return {_TAG: "dict", "items": out} if _TAG in out else out
    module = type(value).__module__
    if module.startswith("pandas"):
        return _encode_pandas(value, where)
    if module.startswith("numpy") and hasattr(value, "tolist"):
        return encode_value(value.tolist(), where)
    raise ConfigError(f"{where}: a {type(value).__name__} cannot be stored; give numbers, strings, lists, "
                      "dicts, or a pandas DataFrame/Series")


def _encode_pandas(value: Any, where: str) -> Any:
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        split = json.loads(value.to_json(orient="split", date_format="iso", double_precision=15))
        return {_TAG: "dataframe", "columns": split["columns"], "index": split["index"],
                "data": split["data"], "dtypes": [str(t) for t in value.dtypes]}
    if isinstance(value, pd.Series):
        split = json.loads(value.to_json(orient="split", date_format="iso", double_precision=15))
        return {_TAG: "series", "name": split.get("name"), "index": split["index"], "data": split["data"],
                "dtype": str(value.dtype)}
    raise ConfigError(f"{where}: a pandas {type(value).__name__} cannot be stored; give a DataFrame or Series")


def decode_value(encoded: Any) -> Any:
    """The Python value for an encoded one (DataFrames and Series come back as pandas objects)."""
    if isinstance(encoded, list):
        return [decode_value(v) for v in encoded]
    if not isinstance(encoded, dict):
        return encoded
    tag = encoded.get(_TAG)
    if tag is None:
        return {k: decode_value(v) for k, v in encoded.items()}
    if tag == "float":
        return float(encoded["value"])
    if tag == "dict":
        return {k: decode_value(v) for k, v in encoded["items"].items()}
    import pandas as pd

    if tag == "dataframe":
        frame = pd.DataFrame(encoded["data"], index=encoded["index"], columns=encoded["columns"])
        for col, dtype in zip(frame.columns, encoded.get("dtypes", []), strict=False):
            with contextlib.suppress(TypeError, ValueError):  # a dtype JSON cannot restore stays inferred
                frame[col] = frame[col].astype(dtype)
        return frame
    if tag == "series":
        series: Any = pd.Series(encoded["data"], index=encoded["index"], name=encoded.get("name"))
        with contextlib.suppress(TypeError, ValueError):
            series = series.astype(encoded.get("dtype", "object"))
        return series
    raise ValueError(f"unknown encoded value tag {tag!r}")


# -- comparison ---------------------------------------------------------------------
def diff_values(expected: Any, actual: Any, where: str = "value",
                tolerance: Mapping[str, float] | None = None) -> str | None:
    """None when two encoded values match, else what differs.

    Numbers match within ``tolerance`` (``{"rel": ..., "abs": ...}``, default a relative 1e-6),
    frames and series by their values; everything else (model text included) exactly.
    """
    tol = tolerance or {}
    rel, abs_ = tol.get("rel", REL_TOL), tol.get("abs", _ABS_TOL)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return None if expected is actual else f"{where}: expected {expected!r}, got {actual!r}"
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if math.isclose(expected, actual, rel_tol=rel, abs_tol=abs_):
            return None
        return f"{where}: expected {expected!r}, got {actual!r}" + (f" (tolerance {dict(tol)})" if tol else "")
    if isinstance(expected, dict) and isinstance(actual, dict) and expected.get(_TAG) in ("dataframe", "series"):
        return _diff_pandas(expected, actual, where, rel, abs_)
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{where}: expected {len(expected)} items, got {len(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            found = diff_values(e, a, f"{where}[{i}]", tolerance)
            if found:
                return found
        return None
    if isinstance(expected, dict) and isinstance(actual, dict):
        if set(expected) != set(actual):
            missing, extra = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
            return f"{where}: keys differ (missing {missing}, unexpected {extra})"
        for k in expected:
            found = diff_values(expected[k], actual[k], f"{where}[{k!r}]", tolerance)
            if found:
                return found
        return None
    return None if expected == actual else f"{where}: expected {_short(expected)}, got {_short(actual)}"


def _diff_pandas(expected: dict[str, Any], actual: dict[str, Any], where: str, rel: float,
                 abs_: float) -> str | None:
    if expected.get(_TAG) != actual.get(_TAG):
        return f"{where}: expected a {expected.get(_TAG)}, got {_short(actual)}"
    import pandas.testing as pdt

    left, right = decode_value(expected), decode_value(actual)
    check = pdt.assert_frame_equal if expected[_TAG] == "dataframe" else pdt.assert_series_equal
    try:
        check(left, right, check_dtype=False, check_exact=False, rtol=rel, atol=abs_,
              check_index_type=False)
    except AssertionError as exc:
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        return f"{where}: " + " ".join(lines[:4])
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def diff_outputs(expected: Mapping[str, Any] | None, actual: Mapping[str, Any] | None,
                 tolerances: Mapping[str, Mapping[str, float]] | None = None) -> list[str]:
    """Every difference between two dicts of encoded outputs (empty when they match); ``tolerances``
    holds each output's declared tolerance by name."""
    expected, actual, tolerances = expected or {}, actual or {}, tolerances or {}
    found = [f"output {k!r} is missing" for k in expected if k not in actual]
    found += [f"unexpected output {k!r}" for k in actual if k not in expected]
    for k in expected:
        if k in actual:
            d = diff_values(expected[k], actual[k], k, tolerances.get(k))
            if d:
                found.append(d)
    return found


def assert_outputs_equal(expected: Mapping[str, Any] | None, actual: Mapping[str, Any] | None,
                         tolerances: Mapping[str, Mapping[str, float]] | None = None) -> None:
    """Assert that ``run()``'s result matches the encoded outputs the notebook stored."""
    if expected is None or actual is None:
        assert expected is None and actual is None, f"expected {expected!r}, got {actual!r}"
        return
    encoded = {k: encode_value(v, k) for k, v in actual.items()}
    problems = diff_outputs(expected, encoded, tolerances)
    assert not problems, "outputs differ from the notebook's:\n  " + "\n  ".join(problems)


def bundles_in(cells: Iterable[Any], mime: str) -> Iterator[dict[str, Any]]:
    """The JSON objects of one MIME type displayed in these cells' outputs, in order."""
    for cell in cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {}).get(mime) if out.get("output_type") in ("display_data",
                                                                               "execute_result") else None
            if isinstance(data, str):  # some writers store JSON mimetypes as text
                with contextlib.suppress(ValueError):
                    data = json.loads(data)
            if isinstance(data, dict):
                yield data


def outputs_in(cells: Iterable[Any]) -> dict[str, Any]:
    """The encoded ``pk.output`` values stored in these cells' outputs (a later name wins)."""
    return {d["name"]: d.get("value") for d in bundles_in(cells, MIME) if isinstance(d.get("name"), str)}


def tolerances_in(cells: Iterable[Any]) -> dict[str, dict[str, float]]:
    """The tolerance each ``pk.output`` declared, by name (outputs declared without one are left out)."""
    found: dict[str, dict[str, float]] = {}
    for d in bundles_in(cells, MIME):
        if isinstance(d.get("name"), str):
            tol = d.get("tolerance")
            if isinstance(tol, dict) and tol:
                found[d["name"]] = {k: float(v) for k, v in tol.items() if k in ("rel", "abs")}
            else:
                found.pop(d["name"], None)
    return found


def printed_in(cells: Iterable[Any]) -> str:
    """What these cells printed to stdout, as a terminal shows it, without the lines %time adds."""
    from protokit.notebook.sanitize import normalize_stream, strip_timing_lines

    text = "".join(str(out.get("text", "")) for cell in cells for out in cell.get("outputs", [])
                   if out.get("output_type") == "stream" and out.get("name") == "stdout")
    return strip_timing_lines(normalize_stream(text))
