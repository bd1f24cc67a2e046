"""Promote sorts the generated import block itself; ruff's isort rule (I001) must find nothing to fix.

The oracle is ruff: for random sets of import statements, the block protokit writes is
exactly what ``ruff check --select I --fix`` makes of it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protokit.promote.imports import LINE_LENGTH, import_block

RUFF = [sys.executable, "-m", "ruff"]
pytestmark = pytest.mark.skipif(shutil.which("ruff") is None and not Path(sys.executable).with_name("ruff").exists(),
                                reason="ruff is a dev dependency")

MODULES = ["os", "os.path", "sys", "re", "typing", "collections", "json", "__future__", "pandas", "numpy",
           "protokit", "protokit.promote.runtime", "Numpy_thing", "pkg2", "pkg10", "helpers", "yaml",
           "openai", "anthropic", "a_very_long_module_name_for_wrapping.with_a_submodule_that_is_long"]
NAMES = ["Path", "Any", "annotations", "CONST", "DataFrame", "read_csv", "x1", "x10", "x2", "getcwd", "sep",
         "A", "a", "long_function_name_number_one", "long_function_name_number_two", "OrderedDict"]
ALIAS = st.one_of(st.none(), st.sampled_from(["_rt", "pd", "np", "SEP", "alias2", "alias10"]))


@st.composite
def statement(draw: st.DrawFn) -> str:
    module = draw(st.sampled_from(MODULES))
    if module == "__future__":
        return "from __future__ import annotations"
    kind = draw(st.sampled_from(["import", "from", "relative"]))
    if kind == "import":
        alias = draw(ALIAS)
        return f"import {module}" + (f" as {alias}" if alias else "")
    names = draw(st.lists(st.tuples(st.sampled_from(NAMES), ALIAS), min_size=1, max_size=6))
    parts = ", ".join(n + (f" as {a}" if a else "") for n, a in names)
    if kind == "relative":
        dots = "." * draw(st.integers(1, 2))
        target = draw(st.sampled_from(["", "helpers", "sub.mod"]))
        return f"from {dots}{target} import {parts}"
    return f"from {module} import {parts}"


def _ruff_fixed(text: str, folder: Path) -> str:
    file = folder / "gen.py"
    file.write_text(text, encoding="utf-8")
    subprocess.run([*RUFF, "check", "--isolated", "--select", "I", "--line-length", str(LINE_LENGTH), "--fix",
                    "--quiet", "gen.py"], cwd=folder, capture_output=True, text=True, check=False)
    return file.read_text(encoding="utf-8")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(statement(), min_size=1, max_size=8))
def test_the_block_is_what_ruff_would_write(tmp_path: Path, statements: list[str]) -> None:
    (tmp_path / "helpers.py").write_text("", encoding="utf-8")  # found beside the file: first party
    block = import_block(statements, first_party=lambda name: (tmp_path / f"{name}.py").exists())
    text = block + "\n\nx = 1\n"
    assert _ruff_fixed(text, tmp_path) == text


def test_sections_order_and_merging() -> None:
    block = import_block(["import sys as _sys", "import pandas as pd", "from os import sep as SEP",
                          "from os import path", "from os import getcwd", "from __future__ import annotations",
                          "import protokit as pk", "from . import sibling"])
    assert block == ("from __future__ import annotations\n\nimport sys as _sys\nfrom os import getcwd, path\n"
                     "from os import sep as SEP\n\nimport pandas as pd\nimport protokit as pk\n\n"
                     "from . import sibling")


def test_not_an_import_is_refused() -> None:
    with pytest.raises(ValueError, match="not an import"):
        import_block(["x = 1"])
