"""Parity with papermill: the same notebooks and options through papermill's own CLI and `protokit run`.

The notebooks are written here in the shape of papermill's test notebooks (``simple_execute``,
``complex_parameters``, ``broken1`` with its error-marker cells, ``sysexit0``, ``sysexit1``,
``systemexit``). Each row runs papermill's command line (in-process, its real click command) and
``protokit run`` on the same notebook with the same options, then compares what the notebook saw
(its parameters' values and types) and whether the run succeeded. Where protokit reads a value by
the parameter's declared type and papermill does not, the row says so: ``typed`` lists those values.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from _cli import cli
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}
MARKER = "papermill-error-cell-tag"

# The parameters cell of the ``params`` notebook: untyped (None), int, float, str, bool and list
# defaults, an annotation and papermill's ``# type:`` comment, under a ``# Parameters`` heading.
PARAMS = """\
# Parameters
msg = None
raw = None
when = None
note = None
n = 1
ratio: float = 0.5  # a ratio
name = "world"  # type: str  who to greet
flag = False
items = ["a", "b"]
"""
NAMES = ("msg", "raw", "when", "note", "n", "ratio", "name", "flag", "items")
SHOW = f"print(repr(dict({', '.join(f'{n}={n}' for n in NAMES)})))"


def write(path: Path, *cells: Any) -> Path:
    """A notebook of cells: code strings, ("md", text), (source, tags) or ("md", text, tags)."""
    nb = new_notebook(metadata={"kernelspec": KERNEL, "language_info": {"name": "python"}})
    for c in cells:
        if isinstance(c, str):
            nb.cells.append(new_code_cell(c))
        elif c[0] == "md":
            nb.cells.append(new_markdown_cell(c[1], metadata={"tags": c[2]} if len(c) > 2 else {}))
        else:
            nb.cells.append(new_code_cell(c[0], metadata={"tags": c[1]}))
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("parity")
    write(d / "params.ipynb", ("md", "## Parameters\n\nThe settings below."), (PARAMS, ["parameters"]), SHOW)
    # papermill's broken1.ipynb: error markers left by an earlier papermill run, markdown cells that
    # make execution counts differ from cell indices, and a failure that raises with no message.
    write(d / "broken.ipynb",
          ("md", "<span>An Exception was encountered at 'In [1]'.</span>", [MARKER]),
          ("md", "A markdown cell that makes the execution counts different to indices."),
          ("n = 1", ["parameters"]),
          ("md", '<span id="papermill-error-cell">Execution encountered an exception here:</span>', [MARKER]),
          "print(\"We're good.\")",
          ("md", "Another markdown cell"),
          "assert False",
          "print(\"Shouldn't get here.\")")
    for name, line in (("sysexit0", "sys.exit(0)"), ("sysexit1", "sys.exit(1)"), ("systemexit", "raise SystemExit")):
        write(d / f"{name}.ipynb", "import sys", line, 'print("Cell should not execute.")')
    (d / "first.yaml").write_text("n: 2\nname: from-file\nwhen: 2024-01-01\nratio: 1.5\n")
    (d / "second.json").write_text('{"n": 3}\n')
    return d


def papermill_run(nb: Path, out: Path, args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """papermill's own command line, in-process: its exit code (it writes ``out`` even on failure)."""
    from click.testing import CliRunner
    from papermill.cli import papermill

    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # papermill sets it; restored after the test
    result = CliRunner().invoke(papermill, [str(nb), str(out), "--no-progress-bar", "--log-level", "ERROR", *args])
    return result.exit_code


def seen(out: Path) -> dict[str, Any]:
    """The parameters as the ``params`` notebook printed them (values with their types)."""
    nb = nbformat.read(out, as_version=4)
    cell = next(c for c in nb.cells if c.source == SHOW)
    text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
    values: dict[str, Any] = ast.literal_eval(text.strip())
    return values


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types (1, 1.0 and True are three different values here)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


# -- the parity table -------------------------------------------------------------------------------
# (id, notebook, options, succeeds, typed: {name: (papermill's value, protokit's)} where protokit
#  reads a value by the parameter's declared type and papermill does not)
ROWS: list[tuple[str, str, list[str], bool, dict[str, tuple[Any, Any]]]] = [
    ("defaults", "params", [], True, {}),
    # -p as papermill's CLI resolves it: True/False/None, int, float, else the string (0123 is 123,
    # yes and a date stay strings: no YAML).
    ("p-values", "params", ["-p", "msg", "0123", "-p", "raw", "yes", "-p", "when", "2024-01-01", "-p", "note",
                            "None", "-p", "n", "7", "-p", "ratio", "2.5", "-p", "flag", "True", "-p", "name", "hi"],
     True, {}),
    # papermill's order, later wins: each -f, then each -y, then -p, then -r (whatever order they are
    # typed in); YAML from -f/-y keeps a date a string (papermill's NoDatesSafeLoader) and reads yes as True.
    ("precedence", "params", ["-r", "name", "6", "-r", "msg", "0123", "-f", "{d}/first.yaml", "-f", "{d}/second.json",
                              "-y", "n: 4", "-y", "flag: yes", "-p", "n", "5", "-p", "name", "from-p"], True, {}),
    # A typed parameter reads its value by its type; papermill injects its own reading.
    ("typed", "params", ["-p", "ratio", "1", "-p", "name", "123", "-p", "items", "[x, y]", "-p", "flag", "yes"],
     True, {"ratio": (1, 1.0), "name": (123, "123"), "items": ("[x, y]", ["x", "y"]), "flag": ("yes", True)}),
    ("raises", "broken", ["-p", "n", "2"], False, {}),
    ("sysexit0", "sysexit0", [], True, {}),
    ("sysexit1", "sysexit1", [], False, {}),
    ("systemexit", "systemexit", [], True, {}),
]


@pytest.mark.parametrize(("notebook", "args", "succeeds", "typed"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_protokit_run_matches_papermill(notebook: str, args: list[str], succeeds: bool,
                                        typed: dict[str, tuple[Any, Any]], site: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    nb = site / f"{notebook}.ipynb"
    args = [a.format(d=site) for a in args]
    theirs, ours = tmp_path / "papermill.ipynb", tmp_path / "protokit.ipynb"
    pm_code = papermill_run(nb, theirs, args, monkeypatch)
    code, text = cli("run", str(nb), "-o", str(ours), *args)
    assert (pm_code == 0, code == 0) == (succeeds, succeeds), text
    assert theirs.exists()  # papermill writes its output notebook, failed or not; so does protokit:
    written = ours if succeeds else tmp_path / "protokit.failed.ipynb"
    assert written.exists() and (succeeds or not ours.exists()), text
    executed = nbformat.read(written, as_version=4)
    pm_executed = nbformat.read(theirs, as_version=4)

    if notebook == "params":
        pm_seen, pk_seen = seen(theirs), seen(ours)
        assert set(pm_seen) == set(pk_seen) == set(NAMES)
        for name in NAMES:
            if name in typed:
                assert same(pm_seen[name], typed[name][0]) and same(pk_seen[name], typed[name][1]), name
            else:
                assert same(pk_seen[name], pm_seen[name]), (name, pm_seen[name], pk_seen[name])
        return

    # Which cells ran: the same sources executed in both (a clean exit runs nothing after it).
    def ran(cells: list[Any]) -> list[str]:
        return [c.source for c in cells if c.cell_type == "code" and c.get("execution_count") is not None]

    assert ran(executed.cells) == ran(pm_executed.cells)
    if succeeds:
        assert "Cell should not execute." not in str([c.get("outputs") for c in executed.cells])
        assert "exited cleanly (sys.exit(0))" in text and "did not run" in text
        # validate (and so promote) refuses the exit: a promoted module must not exit its importer.
        code, report = cli("validate", str(ours))
        assert code == 1 and "exited (SystemExit" in report and "must not exit the interpreter" in report, report
        return
    # A failure: one error line naming the cell papermill names, with a message that is never empty.
    failing = next(c for c in pm_executed.cells if any(o.get("output_type") == "error" for o in c.get("outputs", [])))
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cell "), text
    index = int(re.match(r"error: cell (\d+) ", lines[0]).group(1))  # type: ignore[union-attr]
    source = nbformat.read(nb, as_version=4)
    assert [c for c in source.cells if MARKER not in c.metadata.get("tags", [])][index].source == failing.source
    assert f"(`{failing.source}`)" in lines[0]
    ename = next(o for o in failing.outputs if o.get("output_type") == "error").ename
    assert re.search(rf"raised {ename}(: \S| \(with no message\))", lines[0]), lines[0]
    # protokit keeps papermill's failed notebook as is: its error markers and the traceback.
    assert MARKER in str(executed.cells) and any(o.get("ename") == ename for c in executed.cells
                                                for o in c.get("outputs", []))


# -- values that do not fit: protokit refuses before any kernel starts; papermill would inject them --------
@pytest.mark.parametrize(("args", "expected"), [
    (["-p", "n", "abc"], "parameter 'n' expects int, got 'abc' which is not one; pass one like `-p n 1`"),
    (["-r", "n", "3"], "parameter 'n' expects int, got str '3'; -r passes the text as a string"),
    (["-y", "ratio: high"], "parameter 'ratio' expects float, got str 'high'; give one like `ratio: 0.5` in -y"),
    (["-p", "items", "x"], "parameter 'items' expects list, got str 'x'; pass one like `-p items '[\"a\", \"b\"]'`"),
    (["-p", "flag", "maybe"], "parameter 'flag' expects bool, got 'maybe' which is not one"),
])
def test_a_value_that_does_not_fit_is_one_usage_error(args: list[str], expected: str, site: Path,
                                                      tmp_path: Path) -> None:
    from papermill.cli import _resolve_type

    if args[0] == "-p":  # papermill would run the notebook with its own reading of the text
        assert isinstance(_resolve_type(args[2]), str)
    code, text = cli("run", str(site / "params.ipynb"), "-o", str(tmp_path / "out.ipynb"), *args)
    assert code == 2, text
    assert text.strip().splitlines() == [text.strip()] and text.startswith("error: " + expected), text
    assert "see 'protokit run --help'" in text
    assert not list(tmp_path.glob("*.ipynb"))  # nothing ran, nothing written


def test_yaml_options_that_are_not_a_mapping_say_so(site: Path) -> None:
    code, text = cli("run", str(site / "params.ipynb"), "-y", "- 1")
    assert code == 1 and text.strip() == "error: -y '- 1' must hold a mapping of name: value, e.g. `n_cases: 40`"
    code, text = cli("run", str(site / "params.ipynb"), "-y", "[1")
    assert code == 1 and text.startswith("error: cannot read -y '[1': not YAML at line 1") and text.count("\n") == 1


# -- parameters, types and help as papermill --help-notebook reads them ------------------------------------
# papermill's complex_parameters.ipynb (less its lines that are not literal assignments), under a
# markdown "Parameters" heading and a "# Parameters" heading comment, plus `# type:` comment shapes.
COMPLEX = """\
# Parameters
msg = None
a: float = 2.25 # Variable a
b = [
    'Hello', # First element
# Dummy comment
    'World'
] # type: List[str] Nice list

c: "NoneType" = None
x = 1  # type: int  the help text
y = 2.5  # type: float
z = "s"  # just help
w = 3  # type: ignore
"""


def test_types_and_help_are_read_as_papermill_reads_them(tmp_path: Path) -> None:
    from papermill.inspection import inspect_notebook

    from protokit.notebook.execute import notebook_parameters
    from protokit.notebook.nbfile import read_notebook

    nb = write(tmp_path / "complex.ipynb", ("md", "# Parameters\n\nWhat the notebook takes."),
               (COMPLEX, ["parameters"]), "print(msg)")
    theirs = inspect_notebook(str(nb))
    _, ours = notebook_parameters(read_notebook(nb))
    assert [p.name for p in ours] == list(theirs)
    for p in ours:
        pm = theirs[p.name]
        assert p.help == pm["help"], (p.name, p.help, pm["help"])
        assert p.default == ast.literal_eval(pm["default"]), p.name
        if pm["inferred_type_name"] not in ("None", "ignore"):  # papermill's type, where it names one
            assert p.type.strip("'\"") == pm["inferred_type_name"], p.name
    assert {p.name: p.type for p in ours}["x"] == "int" and {p.name: p.type for p in ours}["w"] == "int"
    assert theirs["w"]["inferred_type_name"] == "ignore"  # mypy's `type: ignore` is no type to protokit

    code, text = cli("run", str(nb), "--help-notebook")
    assert code == 0, text
    assert "Parameters" not in text.replace(f"parameters of {nb}", "")  # a heading is never help
    assert re.search(r"x: int \(default 1\)\s+the help text", text) and "Nice list" in text
    assert not (tmp_path / ".protokit").exists()  # --help-notebook runs nothing
