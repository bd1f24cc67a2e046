"""Promote never pastes notebook text into code: every notebook-derived slot is made inert.

A parameter's string default, its help comment, its annotation as shown in the docstring,
the notebook's title and description, and its path all land in generated source. For any
text in any of those slots the module must compile, run nothing but its own definitions
on import, and hand the value back unchanged (run()'s default, the docstring).
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import json
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protokit.notebook.params import Parameter
from protokit.promote.codegen import render_module, render_tests, split_cells
from protokit.testing import Golden

# Texts written to break out of a docstring, a comment or a string literal.
HOSTILE = [
    '"""\nimport os; os.system("touch /tmp/pwned")\n"""',
    "'''\nraise SystemExit(3)\n'''",
    'ends with a quote"',
    'ends with a backslash\\',
    "line one\nline two\r\nline three\rfour",
    "nul\x00byte",
    "lone surrogate \ud800 here",
    "line\u2028separator\u2029paragraph",
    "# not a comment\n__import__('sys').exit(4)",
    "{{ jinja }} {% if x %}{% endif %}",
    "\\N{BULLET} \\x41 \\u0041 escapes that are not",
    "tab\tand\x0bvertical\x0cform feed",
    "é ü 中文 🙂",
    "",
]
text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=60))


def _module(*, default: str, help_text: str, title: str, description: str, source: str) -> str:
    params = [Parameter(name="message", type="str", default=default, help=help_text),
              Parameter(name="n", type="int", default=3, help=help_text)]
    layout = split_cells({2: "result = message * n"}, params)
    return render_module(name="hostile", source=source, notebook_hash="sha256:" + "0" * 64, title=title,
                         description=description, parameters=params, layout=layout)


def _words(text: str) -> str:
    return " ".join(text.split())


def _load(src: str) -> types.ModuleType:
    tree = ast.parse(src)  # compiles: nothing broke out of its slot into a syntax error
    # Only the module's own kinds of statement are at the top level: no pasted code ran on import.
    kinds = {type(node).__name__ for node in tree.body}
    assert kinds <= {"Expr", "ImportFrom", "Import", "FunctionDef", "If"}, kinds
    assert isinstance(tree.body[0], ast.Expr)  # the docstring comes first, and is one string
    exprs = [n for n in tree.body if isinstance(n, ast.Expr)]
    assert len(exprs) == 1, "a second top-level expression means text escaped the docstring"
    mod = types.ModuleType("hostile")
    exec(compile(tree, "hostile.py", "exec"), mod.__dict__)
    return mod


@settings(max_examples=150, deadline=None)
@given(default=text, help_text=text, title=text, description=text, source=text)
def test_any_text_in_any_slot_gives_a_module_that_compiles_and_round_trips(
        default: str, help_text: str, title: str, description: str, source: str) -> None:
    src = _module(default=default, help_text=help_text, title=title, description=description,
                  source=source + ".ipynb")
    assert "\x00" not in src
    src.encode("utf-8")  # a file can hold it (no lone surrogates written raw)
    mod = _load(src)
    assert inspect.signature(mod.run).parameters["message"].default == default
    # Docstrings are prose laid out to the line length: every word comes back, in order.
    doc = _words(mod.__doc__ or "")
    assert _words(title) in doc and _words(description) in doc and _words(source + ".ipynb") in doc
    assert _words(help_text) in _words(mod.run.__doc__ or "")
    # The generated comment lines stay comments: one line each.
    header = src.split('"""', 1)[0]
    assert all(line.startswith("#") for line in header.splitlines() if line)


@pytest.mark.parametrize("payload", HOSTILE)
def test_hostile_defaults_run_through_the_generated_function(payload: str) -> None:
    mod = _load(_module(default=payload, help_text=payload, title=payload, description=payload,
                        source=payload + ".ipynb"))
    assert mod.run.__kwdefaults__["message"] == payload


@settings(max_examples=60, deadline=None)
@given(source=text)
def test_generated_tests_compile_for_any_notebook_path(source: str) -> None:
    src = render_tests(name="hostile", source=source + ".ipynb")
    tree = ast.parse(src)
    assert not any(isinstance(n, ast.Expr) for n in tree.body[1:]), "text escaped into a statement"


@settings(max_examples=100, deadline=None)
@given(value=text)
def test_golden_data_round_trips_any_case_value(value: str) -> None:
    # The cases are data, never code: whatever a notebook printed or returned comes back unchanged.
    golden = Golden(module="hostile", compare="outputs", cases=[
        {"id": value or "default", "params": {"message": value}, "outputs": {"echo": value}, "stdout": value}])
    text = golden.to_json()
    text.encode("utf-8")  # a file can hold it, lone surrogates included (escaped)
    back = json.loads(text)
    assert back["cases"] == golden.cases
    golden.check(golden.cases[0], {"echo": value})


def test_list_and_dict_defaults_are_fresh_each_call_and_typed() -> None:
    params = [Parameter(name="models", type="list", default=["a", "b"], help="models"),
              Parameter(name="weights", type="dict", default={"a": 1.0}, help="weights"),
              Parameter(name="mixed", type="list", default=[1, "x"], help="mixed")]
    layout = split_cells({2: "models.append('c')\nweights['z'] = 2.0\nprint(len(models), len(weights))"}, params)
    src = render_module(name="defaults", source="d.ipynb", notebook_hash="sha256:" + "0" * 64, title="t",
                        description="", parameters=params, layout=layout)
    assert "models: list[str] | None = None" in src and "weights: dict[str, float] | None = None" in src
    assert "mixed: list[Any] | None = None" in src
    mod = _load(src)
    outputs = []
    for _ in range(2):  # a shared default would grow on every call
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            mod.run()
        outputs.append(buf.getvalue())
    assert outputs == ["3 2\n", "3 2\n"]
    assert inspect.signature(mod.run).parameters["models"].default is None
