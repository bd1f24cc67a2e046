"""``pk.output(name, value)``: what a notebook produces, stored so promote can test it.

In a notebook the value is displayed with two representations: ``text/plain``
for people and :data:`MIME` (``{"name", "value"}`` JSON) for protokit, so the
executed ``.ipynb`` carries every declared output. In a promoted module the same
calls land in the dict ``run()`` returns, through :func:`collect_outputs`.

Values are stored in an *encoded* JSON form: plain JSON stays as it is, and the
rest is tagged with a ``"$pk"`` key (non-finite floats, DataFrames and Series in
``orient="split"`` form with their dtypes). Comparison happens on that form, so
a value read back from a notebook and a value computed by a module compare alike:
floats with a relative tolerance of 1e-6, frames through :mod:`pandas.testing`.
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
    "collect_outputs",
    "decode_value",
    "diff_outputs",
    "diff_values",
    "encode_value",
    "output",
    "outputs_in",
    "printed_in",
]

T = TypeVar("T")
MIME = "application/vnd.protokit.output+json"
REL_TOL = 1e-6
_ABS_TOL = 1e-12
_TAG = "$pk"
_sink: ContextVar[dict[str, Any] | None] = ContextVar("protokit_outputs", default=None)


def output(name: str, value: T) -> T:
    """Declare a notebook output: returns ``value``, shows it, and stores it for promote."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"pk.output() needs a name that is a Python identifier, got {name!r}")
    encoded = encode_value(value, where=f"pk.output({name!r})")
    sink = _sink.get()
    if sink is not None:
        sink[name] = value  # inside a promoted module's run(): collect, show nothing
        return value
    _display(name, value, encoded)
    return value


def _display(name: str, value: Any, encoded: Any) -> None:
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python without IPython: nothing to display to
        return
    if get_ipython() is None:
        return
    from IPython.display import display

    bundle: dict[str, Any] = {MIME: {"name": name, "value": encoded}, "text/plain": _plain(name, value)}
    display(bundle, raw=True)


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
def diff_values(expected: Any, actual: Any, where: str = "value") -> str | None:
    """None when two encoded values match (floats within rel 1e-6), else what differs."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return None if expected is actual else f"{where}: expected {expected!r}, got {actual!r}"
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if math.isclose(expected, actual, rel_tol=REL_TOL, abs_tol=_ABS_TOL):
            return None
        return f"{where}: expected {expected!r}, got {actual!r}"
    if isinstance(expected, dict) and isinstance(actual, dict) and expected.get(_TAG) in ("dataframe", "series"):
        return _diff_pandas(expected, actual, where)
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{where}: expected {len(expected)} items, got {len(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            found = diff_values(e, a, f"{where}[{i}]")
            if found:
                return found
        return None
    if isinstance(expected, dict) and isinstance(actual, dict):
        if set(expected) != set(actual):
            missing, extra = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
            return f"{where}: keys differ (missing {missing}, unexpected {extra})"
        for k in expected:
            found = diff_values(expected[k], actual[k], f"{where}[{k!r}]")
            if found:
                return found
        return None
    return None if expected == actual else f"{where}: expected {_short(expected)}, got {_short(actual)}"


def _diff_pandas(expected: dict[str, Any], actual: dict[str, Any], where: str) -> str | None:
    if expected.get(_TAG) != actual.get(_TAG):
        return f"{where}: expected a {expected.get(_TAG)}, got {_short(actual)}"
    import pandas.testing as pdt

    left, right = decode_value(expected), decode_value(actual)
    check = pdt.assert_frame_equal if expected[_TAG] == "dataframe" else pdt.assert_series_equal
    try:
        check(left, right, check_dtype=False, check_exact=False, rtol=REL_TOL, atol=_ABS_TOL,
              check_index_type=False)
    except AssertionError as exc:
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        return f"{where}: " + " ".join(lines[:4])
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def diff_outputs(expected: Mapping[str, Any] | None, actual: Mapping[str, Any] | None) -> list[str]:
    """Every difference between two dicts of encoded outputs (empty when they match)."""
    expected, actual = expected or {}, actual or {}
    found = [f"output {k!r} is missing" for k in expected if k not in actual]
    found += [f"unexpected output {k!r}" for k in actual if k not in expected]
    for k in expected:
        if k in actual:
            d = diff_values(expected[k], actual[k], k)
            if d:
                found.append(d)
    return found


def assert_outputs_equal(expected: Mapping[str, Any] | None, actual: Mapping[str, Any] | None) -> None:
    """Assert that ``run()``'s result matches the encoded outputs the notebook stored."""
    if expected is None or actual is None:
        assert expected is None and actual is None, f"expected {expected!r}, got {actual!r}"
        return
    encoded = {k: encode_value(v, k) for k, v in actual.items()}
    problems = diff_outputs(expected, encoded)
    assert not problems, "outputs differ from the notebook's:\n  " + "\n  ".join(problems)


def outputs_in(cells: Iterable[Any]) -> dict[str, Any]:
    """The encoded ``pk.output`` values stored in these cells' outputs (a later name wins)."""
    found: dict[str, Any] = {}
    for cell in cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {}).get(MIME) if out.get("output_type") in ("display_data",
                                                                               "execute_result") else None
            if isinstance(data, str):  # some writers store JSON mimetypes as text
                with contextlib.suppress(ValueError):
                    data = json.loads(data)
            if isinstance(data, dict) and isinstance(data.get("name"), str):
                found[data["name"]] = data.get("value")
    return found


def printed_in(cells: Iterable[Any]) -> str:
    """What these cells printed to stdout, as a terminal shows it, without the lines %time adds."""
    from protokit.notebook.sanitize import normalize_stream, strip_timing_lines

    text = "".join(str(out.get("text", "")) for cell in cells for out in cell.get("outputs", [])
                   if out.get("output_type") == "stream" and out.get("name") == "stdout")
    return strip_timing_lines(normalize_stream(text))
