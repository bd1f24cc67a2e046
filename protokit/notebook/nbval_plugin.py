"""pytest plugin (entry point ``pytest11: protokit``): ``pytest --nbval`` on protokit notebooks.

When nbval runs, each notebook's kernel starts with ``PROTOKIT_CACHE_MODE=replay``
(``--protokit-cache-mode`` to change it), so model calls replay from the cache
and never reach the network; protokit's sanitizers (timestamps, addresses,
timings, progress bars, uuids) run before any ``--nbval-sanitize-with`` file's;
``pk.output`` values compare by value (floats within rel 1e-6, frames via
pandas.testing) rather than as text; stderr (warnings, logs) is not compared;
and a cell ending in ``;`` shows no value, as in Jupyter. Nothing happens unless ``--nbval`` or
``--nbval-lax`` is given; ``-p no:protokit`` turns the plugin off. It imports only pytest and
protokit's runtime, so a runtime-only install (no nbval, no Jupyter) runs pytest unaffected.
"""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from protokit._env import environ

__all__ = ["pytest_addoption", "pytest_collection_modifyitems", "pytest_runtest_setup"]

_MODES = ("auto", "record", "replay", "off")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add protokit's nbval options."""
    group = parser.getgroup("protokit", "protokit notebooks under nbval")
    group.addoption("--protokit-cache-mode", default="replay", choices=_MODES,
                    help="PROTOKIT_CACHE_MODE for nbval's kernels (default: replay, so no network).")
    group.addoption("--protokit-no-sanitize", action="store_true", default=False,
                    help="Do not add protokit's output sanitizers to nbval's.")


def _active(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False))


def _is_cell(item: pytest.Item) -> bool:
    return type(item).__name__ == "IPyNbCell" and type(item).__module__.startswith("nbval")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Register protokit's sanitizers and value-aware comparison on nbval's cells."""
    if not _active(config):
        return
    from protokit.notebook.sanitize import PATTERNS

    for item in items:
        if not _is_cell(item):
            continue
        parent: Any = item.parent
        if not config.option.protokit_no_sanitize and not getattr(parent, "_protokit_sanitizers", False):
            # Ours first, then whatever nbval loads from --nbval-sanitize-with at setup (it updates the dict).
            merged: OrderedDict[str, str] = OrderedDict(PATTERNS)
            merged.update(parent.sanitize_patterns)
            parent.sanitize_patterns = merged
            parent._protokit_sanitizers = True
        cell: Any = item
        cell.compare_outputs = _value_aware(cell.compare_outputs, _quiet(str(cell.cell.get("source", ""))))


def _quiet(source: str) -> bool:
    """True when the cell ends with `;`, which tells IPython not to display the last value."""
    lines = [ln.split("#", 1)[0].rstrip() for ln in source.splitlines()]
    lines = [ln for ln in lines if ln]
    return bool(lines) and lines[-1].endswith(";")


def _value_aware(compare: Callable[..., bool], quiet: bool) -> Callable[..., bool]:
    """Wrap nbval's comparison: a pk.output equal by value is shown to nbval as the stored one."""
    from protokit.notebook.outputs import MIME, diff_values

    def run(test: list[Any], ref: list[Any], skip_compare: Any = None) -> bool:
        # stderr carries warnings and logs that vary with the environment (a price warning on first call).
        test = [o for o in test if not _is_stderr(o)]
        if quiet:
            # nbval runs cells without storing history, and IPython then ignores a trailing `;`:
            # drop the value IPython would not have displayed (`pk.output("x", x);` is the common case).
            test = [o for o in test if o.get("output_type") != "execute_result"]
        ref = [o for o in ref if not _is_stderr(o)]
        ref_values = [o for o in ref if MIME in o.get("data", {})]
        adopted = []
        i = 0
        for out in test:
            data = out.get("data", {})
            if MIME in data and i < len(ref_values):
                stored = ref_values[i]
                i += 1
                mine, theirs = data[MIME], stored["data"][MIME]
                if isinstance(mine, Mapping) and isinstance(theirs, Mapping) \
                        and mine.get("name") == theirs.get("name") \
                        and diff_values(theirs.get("value"), mine.get("value"),
                                        tolerance=theirs.get("tolerance")) is None:
                    out = copy.deepcopy(out)
                    out["data"] = dict(stored["data"])
            adopted.append(out)
        return compare(adopted, ref, skip_compare)

    return run


def _is_stderr(out: Any) -> bool:
    return bool(out.get("output_type") == "stream" and out.get("name") == "stderr")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """Start nbval's kernel (set up with a notebook's first cell) with the replay cache environment."""
    if not (_active(item.config) and _is_cell(item)):
        yield
        return
    cache = os.environ.get("PROTOKIT_CACHE")
    if cache and not Path(cache).expanduser().is_absolute():
        # The kernel runs in the notebook's directory; keep the path the user meant.
        cache = str(Path(item.config.invocation_params.dir) / Path(cache).expanduser())
    changes: dict[str, str | None] = {"PROTOKIT_CACHE_MODE": item.config.option.protokit_cache_mode,
                                      "PROTOKIT_RUN_ID": None}
    if cache:
        changes["PROTOKIT_CACHE"] = cache
    with environ(changes):
        yield
