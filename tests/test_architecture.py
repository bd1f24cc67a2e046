"""The shape of the package: layer contracts, the public API, one argument spec, typed."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import protokit as pk
from protokit.comparisons import CompareArgs

ROOT = Path(__file__).resolve().parent.parent


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"Contracts: \d+ kept, 0 broken", done.stdout), done.stdout[-1000:]


def _documented_api() -> set[str]:
    """The names listed between the public-API markers of the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- public-api -->", 2)[1]
    return set(re.findall(r"`pk\.([A-Za-z_][A-Za-z0-9_]*)`", block))


def test_all_is_exactly_the_documented_public_api() -> None:
    assert set(pk.__all__) - {"__version__"} == _documented_api()
    assert len(pk.__all__) == len(set(pk.__all__))


@pytest.mark.parametrize("name", sorted(set(pk.__all__) - {"__version__"}))
def test_every_public_name_resolves_and_says_what_it_is(name: str) -> None:
    value = getattr(pk, name)
    assert inspect.getdoc(value), f"pk.{name} has no docstring"


def test_compare_acompare_estimate_and_the_widget_share_one_argument_spec() -> None:
    spec = list(inspect.signature(CompareArgs).parameters.values())
    for fn in (pk.compare, pk.acompare, pk.estimate):
        assert list(inspect.signature(fn).parameters.values()) == spec, fn
    widget = inspect.signature(pk.Compare).parameters
    assert list(widget)[:4] == ["models", "prompt", "cases", "scorers"] and "args" in widget


def test_an_unknown_argument_is_refused_alike_everywhere() -> None:
    for fn in (pk.compare, pk.estimate):
        with pytest.raises(TypeError, match="budget"):
            fn(["openai:x"], "{q}", [{"q": "a"}], budget=1.0)
    with pytest.raises(TypeError, match="budget"):
        pk.Compare(["openai:x"], "{q}", [{"q": "a"}], budget=1.0)


def test_the_package_ships_its_type_information() -> None:
    assert (ROOT / "protokit" / "py.typed").exists()


def test_importing_protokit_installs_nothing_and_stays_light() -> None:
    # The runner hands models an explicit context; importing must not pull in the heavy layers.
    code = ("import sys, protokit; heavy = [m for m in ('pandas', 'ipywidgets', 'papermill', 'nbformat', "
            "'protokit.comparisons', 'protokit.widgets', 'protokit.notebook') if m in sys.modules]; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
