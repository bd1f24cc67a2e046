"""The promotion gate: static checks, re-execution against stored outputs, and `pytest --nbval` with replay."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from protokit.errors import ConfigError
from protokit.notebook import run_notebook, validate
from protokit.notebook.names import check_names
from protokit.notebook.outputs import MIME, assert_outputs_equal, decode_value, diff_values, encode_value
from protokit.notebook.rewrite_magics import rewrite_cell
from protokit.notebook.sanitize import sanitize_text
from protokit.secrets import find_secrets, mask, redact

KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}
FAKE_KEY = "sk-" + "proj-" + "Ab3dE5fG7hJ9kL2mN4pQ6rS8"


def make_notebook(path: Path, *cells: Any, run: bool = False) -> Path:
    """Code cells from strings or (source, tags[, outputs]) tuples; run=True numbers them as executed."""
    nb = new_notebook(metadata={"kernelspec": KERNEL})
    nb.cells = [new_markdown_cell("# Scores")]
    for n, c in enumerate(cells, start=1):
        source, tags, outputs = (c, [], []) if isinstance(c, str) else (c + ([],) * (3 - len(c)))
        cell = new_code_cell(source, metadata={"tags": tags} if tags else {})
        cell.outputs = [nbformat.from_dict(o) for o in outputs]
        cell.execution_count = n if run else None
        nb.cells.append(cell)
    nbformat.write(nb, path)
    return path


# -- magics, names, secrets, sanitizers, values -------------------------------------------
@pytest.mark.parametrize(("source", "expected"), [
    ("%time x = f()\nprint(x)", "x = f()\nprint(x)"),
    ("y = %time f()", "y = f()"),
    ("%%time\nx = 1\ny = 2\n", "x = 1\ny = 2\n"),
    ("%matplotlib inline\nimport os", "\nimport os"),
    ("for i in range(3):\n    %time f(i)", "for i in range(3):\n    f(i)"),
    ("%load_ext autoreload\n%autoreload 2\nx = 1", "\n\nx = 1"),
    ('s = """\n%time in a string\n!not a shell line\n"""', 's = """\n%time in a string\n!not a shell line\n"""'),
])
def test_magics_rewritten_where_exact(source: str, expected: str) -> None:
    rewritten = rewrite_cell(source)
    assert not rewritten.refused
    assert rewritten.source.rstrip("\n") == expected.rstrip("\n")


@pytest.mark.parametrize(("source", "line", "words"), [
    ("import os\n!pip install requests", 2, "shell command"),
    ("files = !ls", 1, "shell command"),
    ("%run other.py", 1, "%run"),
    ("%cd /tmp", 1, "%cd"),
    ("%timeit f()", 1, "%timeit"),
    ("%%bash\necho hi", 1, "%%bash"),
    ("%%capture out\nprint(1)", 1, "%%capture"),
    ("%%time\nx = 1\n!ls", 3, "shell command"),
])
def test_magics_refused_with_the_line(source: str, line: int, words: str) -> None:
    refused = rewrite_cell(source).refused
    assert refused and refused[0].line == line and words in refused[0].message and refused[0].fix


def test_display_cell_magic_is_left_out() -> None:
    assert rewrite_cell("%%html\n<b>hi</b>").dropped


def trees(*sources: str, explore: tuple[int, ...] = ()) -> list[tuple[int, ast.Module, bool]]:
    return [(i, ast.parse(s), i not in explore) for i, s in enumerate(sources)]


def test_names_explore_undefined_and_order() -> None:
    issues = check_names(trees("helper = 1", "print(helper)", "print(total)", "print(late)\nlate = 2",
                               explore=(0,)))
    by_name = {i.name: i for i in issues}
    assert "only defined in explore cell 0" in by_name["helper"].message and by_name["helper"].cell_index == 1
    assert "not defined by any exported cell" in by_name["total"].message
    assert "used before it is defined" in by_name["late"].message and set(by_name) == {"helper", "total", "late"}
    issues = check_names(trees("print(x)", "x = 1"))
    assert issues[0].name == "x" and "used before it is defined (cell 1" in issues[0].message


def test_names_scopes_are_understood() -> None:
    ok = trees(
        "import pandas as pd\nfrom math import sqrt as root",
        "def f(a, *rest, key=None):\n    total = a + root(len(rest))\n    return helper(total)",
        "def helper(v):\n    return [w * 2 for w in range(v) if w]\n",
        "class Box:\n    size = 3\n    def area(self):\n        return self.size * factor\nfactor = 2",
        "squares = {k: k * k for k in range(3)}\nresult = f(1, 2, 3)\nprint(result, n_cases)",
        "try:\n    pass\nexcept ValueError as err:\n    print(err)\nwith open('x') as fh:\n    pass",
        "display(squares)\nlam = lambda q: q + factor",
    )
    assert check_names(ok, given=["n_cases"]) == []
    issues = check_names(trees("def f():\n    return missing\n", "f()"))
    assert [i.name for i in issues] == ["missing"]
    assert check_names(trees("from os.path import *", "print(join)")) == []
    assert [i.name for i in check_names(trees("print(Out[1])"))] == ["Out"]


def test_secrets_found_masked_and_redacted() -> None:
    text = (f"key = '{FAKE_KEY}'\nanthropic = 'sk-ant-api03-{'Zx9' * 8}'\naws = 'AKIA{'Q7ZRT4XK2MPL9WJB'}'\n"
            "db_password = 'hunter2hunter2hu'\napi_token = 'Tq8vR2mX9pL4tK7wYz'\n")
    hits = find_secrets(text)
    kinds = [h.kind for h in hits]  # in text order
    assert kinds[:3] == ["an OpenAI project key", "an Anthropic API key", "an AWS access key id"]
    assert any("'api_token'" in k for k in kinds)
    assert any("'db_password'" in k for k in kinds)  # a human password is still a password
    assert mask(FAKE_KEY) == "sk-p…"
    assert FAKE_KEY[:8] not in redact(text) and "sk-p…" in redact(text)
    for harmless in ("OPENAI_API_KEY = 'sandbox-key'", "max_tokens = 300", "model_key = 'gpt-4.1-mini'",
                     "token_budget = 'unlimited-tokens'"):
        assert find_secrets(harmless) == [], harmless


def test_sanitizers() -> None:
    text = ("at 2025-01-02T03:04:05.123Z <Obj at 0x7f3a2c1d0e50> took 1.23 s and 850 ms\n"
            "Wall time: 2.86 μs\nid 123e4567-e89b-12d3-a456-426614174000\n"
            " 42%|████      | 21/50 [00:01<00:02, 12.3it/s]\n")
    assert sanitize_text(text) == ("at <TIMESTAMP> <Obj at 0xADDR> took <DURATION> and <DURATION>\n"
                                   "Wall time: <TIME>\nid <UUID>\n<PROGRESS>\n")


def test_values_encode_decode_and_compare() -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, float("nan")], "c": ["x", "y"]}, index=[10, 20])
    encoded = encode_value({"frame": frame, "series": frame["a"], "nan": float("nan"), "t": (1, 2)})
    back = decode_value(json.loads(json.dumps(encoded)))
    pd.testing.assert_frame_equal(back["frame"], frame, check_dtype=False)
    assert back["series"].tolist() == [1, 2] and back["t"] == [1, 2] and back["nan"] != back["nan"]
    assert diff_values(1.0, 1.0 + 1e-9) is None
    assert "expected 1.0, got 1.001" in str(diff_values(1.0, 1.001, "score"))
    assert diff_values(1, True) is not None and diff_values([1, 2], [1, 2, 3]) is not None
    other = encode_value(frame.assign(b=[0.6, float("nan")]))
    assert "b" in str(diff_values(encode_value(frame), other, "frame"))
    assert diff_values(encode_value(frame), encode_value(frame * 1 if False else frame.copy())) is None
    assert decode_value(encode_value({"$pk": 1})) == {"$pk": 1}
    with pytest.raises(ConfigError, match="a set cannot be stored"):
        encode_value({1, 2})
    with pytest.raises(ConfigError, match="dict keys must be strings"):
        encode_value({1: 2})
    assert_outputs_equal({"score": 0.5}, {"score": 0.5 + 1e-12})
    with pytest.raises(AssertionError, match="output 'missing' is missing"):
        assert_outputs_equal({"missing": 1}, {})


# -- validate on notebooks, without a kernel ----------------------------------------------
def test_static_findings_name_cell_line_and_fix(tmp_path: Path) -> None:
    nb = make_notebook(
        tmp_path / "bad.ipynb",
        ("n = 1", ["parameters"]),
        "!pip install x\nimport json",
        f"client_key = '{FAKE_KEY}'",
        "import openai\nclient = openai.OpenAI()",
        "print(undefined_thing)",
        ("scratch = 1", ["explore"]),
        "print(scratch)",
        run=True)
    report = validate(nb)  # errors found: the fresh run is skipped, so no kernel starts
    assert not report.ok
    got = {(f.cell_index, f.check) for f in report.errors}
    assert got == {(2, "magics"), (3, "secrets"), (4, "cache"), (5, "names"), (7, "names")}
    for finding in report.errors:
        assert finding.fix and finding.first_line
    text = report.format()
    assert "error: cell 2 (`!pip install x`): line 1 `!pip install x`: shell command" in text
    assert FAKE_KEY[:6] not in text and "sk-p…" in text
    assert "only defined in explore cell 6" in text
    assert text.splitlines()[-1].endswith("5 errors, 0 warnings: not ready to promote")
    assert any(f.severity == "note" and "re-execution skipped" in f.message for f in report.findings)


def test_clean_notebook_passes_static_checks(tmp_path: Path) -> None:
    nb = make_notebook(tmp_path / "ok.ipynb", "%matplotlib inline\nx = 2", "%time y = x * 2\nprint(y)", run=True)
    report = validate(nb, execute_cells=False)
    assert report.ok, report.format()
    assert report.sources[2].rstrip() == "y = x * 2\nprint(y)"
    notes = [f.message for f in report.findings if f.severity == "note"]
    assert any("no cell is tagged `parameters`" in n for n in notes)
    assert any("`%time y = x * 2` becomes `y = x * 2`" in n for n in notes)


# -- re-execution -----------------------------------------------------------------------
CELLS = (
    ('n_cases: int = 2  # cases\nscale: float = 1.0', ["parameters"]),
    'import protokit as pk\nimport pandas as pd\nm = pk.model("openai:echo")',
    'answers = [m.complete(f"ticket {i}").text for i in range(n_cases)]\nprint(answers)',
    '%time score = scale / 3\npk.output("score", score);',
    'frame = pd.DataFrame({"answer": answers, "length": [len(a) for a in answers]})\npk.output("frame", frame);',
    ("frame.describe()", ["explore"]),
    'import datetime\nprint("done at", datetime.datetime.now().isoformat(), "in", 0.25, "s")',
)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory, _sandbox_server: Any) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("validate")
    nb_path = make_notebook(root / "scores.ipynb", *CELLS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROTOKIT_CACHE", str(root / "cache.db"))
        mp.setenv("PROTOKIT_CACHE_MODE", "auto")
        mp.setenv("OPENAI_BASE_URL", _sandbox_server.openai_base_url)
        mp.setenv("OPENAI_API_KEY", "sandbox-key")
        run_notebook(nb_path, {}, output_path=nb_path)
    return SimpleNamespace(root=root, nb=nb_path, sandbox=_sandbox_server)


def tampered(src: Path, dest: Path, edit: Any) -> Path:
    nb = nbformat.read(src, as_version=4)
    edit(nb)
    nbformat.write(nb, dest)
    return dest


def test_validate_replays_offline_and_passes(executed: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROTOKIT_CACHE", str(executed.root / "cache.db"))
    before = executed.sandbox.stats()["requests"]
    report = validate(executed.nb)
    assert report.ok, report.format()
    assert not report.warnings
    assert report.execution is not None and len(report.execution.cache_keys) == 2
    assert executed.sandbox.stats()["requests"] == before  # replayed: nothing reached the server
    assert [p.name for p in report.parameters] == ["n_cases", "scale"]


def test_outputs_compared_by_value_after_sanitising(executed: SimpleNamespace,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROTOKIT_CACHE", str(executed.root / "cache.db"))

    def edit(nb: Any) -> None:
        score = nb.cells[4].outputs[-1]
        score.data[MIME]["value"] *= 1 + 1e-9  # within tolerance: not a finding
        nb.cells[3].outputs[0].text = "['ticket 0', 'ticket 9']\n"
        frame = next(o for o in nb.cells[5].outputs if MIME in o.get("data", {}))
        frame.data[MIME]["value"]["data"][1][1] = 99

    report = validate(tampered(executed.nb, executed.root / "tampered.ipynb", edit))
    errors = {f.cell_index: f.message for f in report.errors}
    assert set(errors) == {3, 5}, report.format()
    assert "stream:stdout stored `['ticket 0', 'ticket 9']`, now `['ticket 0', 'ticket 1']`" in errors[3]
    assert "pk.output 'frame'" in errors[5]
    assert all(f.fix.startswith("restart the kernel") for f in report.errors)


def test_pytest_nbval_replays_and_compares_values(executed: SimpleNamespace) -> None:
    def nudge(nb: Any) -> None:
        nb.cells[4].outputs[-1].data[MIME]["value"] *= 1 + 1e-9
        nb.cells[4].outputs[-1].data["text/plain"] = "score = 0.3333333336"

    nudged = tampered(executed.nb, executed.root / "nudged.ipynb", nudge)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
    env.update({"PROTOKIT_CACHE": str(executed.root / "cache.db"), "PROTOKIT_CACHE_MODE": "auto"})
    done = subprocess.run([sys.executable, "-m", "pytest", "--nbval", "-q", "-p", "no:cacheprovider",
                           str(executed.nb), str(nudged)], cwd=executed.root, env=env, capture_output=True,
                          text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "14 passed" in done.stdout  # 7 code cells in each notebook


def test_stored_volatile_output_is_sanitised(executed: SimpleNamespace) -> None:
    """The last cell prints a timestamp and a duration: validate and nbval pass only through the sanitizers."""
    nb = nbformat.read(executed.nb, as_version=4)
    stored = "".join(o.get("text", "") for o in nb.cells[7].outputs)
    assert stored.startswith("done at ") and sanitize_text(stored) == "done at <TIMESTAMP> in <DURATION>\n"


def test_a_refused_magic_line_does_not_pile_name_errors_on_later_cells(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from protokit.notebook import validate

    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [new_code_cell("!pip install requests\nimport json\nx = 1", execution_count=1),
                new_code_cell("print(json.dumps(x))", execution_count=2)]
    path = tmp_path / "magic.ipynb"
    nbformat.write(nb, path)
    report = validate(path, execute_cells=False)
    checks = [(f.check, f.cell_index) for f in report.findings if f.severity == "error"]
    assert ("magics", 0) in checks
    assert not [c for c in checks if c[0] == "names"]
