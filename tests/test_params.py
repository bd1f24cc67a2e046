"""The parameters cell: parsing with ast, types, help, coercion at call time and from the command line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protokit.errors import ConfigError, NotebookError
from protokit.notebook.params import (
    Parameter,
    ParameterTypeError,
    bind_parameters,
    check_value,
    cli_parameters,
    parse_parameters,
    parse_text,
)

CELL = '''\
# how many cases to run
n_cases: int = 3
threshold = 0.5  # minimum score
model = "openai:echo"
labels: list[str] = ["bug", "billing"]
weights: dict[str, float] = {"a": 1.0}
verbose = False
limit: int | None = None
anything = None
"""a note the parser ignores"""
'''


def test_parse_types_defaults_and_help() -> None:
    params = {p.name: p for p in parse_parameters(CELL)}
    assert list(params) == ["n_cases", "threshold", "model", "labels", "weights", "verbose", "limit", "anything"]
    assert params["n_cases"] == Parameter("n_cases", "int", 3, "how many cases to run", 2)
    assert (params["threshold"].type, params["threshold"].default, params["threshold"].help) == (
        "float", 0.5, "minimum score")
    assert params["model"].type == "str" and params["model"].help == ""
    assert params["labels"].type == "list[str]" and params["labels"].default == ["bug", "billing"]
    assert params["weights"].type == "dict[str, float]"
    assert params["verbose"].type == "bool"
    assert params["limit"].type == "int | None" and params["limit"].default is None
    assert params["anything"].type == "Any"


@pytest.mark.parametrize(("source", "expected"), [
    ("n = len('abc')", "line 1 `n = len('abc')`: the value is not a literal"),
    ("x = 1\nimport os", "line 2 `import os` is not a literal assignment"),
    ("a = b = 1", "not a literal assignment"),
    ("n = 1\nn = 2", "'n' is assigned twice"),
    ("n: int = 'three'", "parameter 'n' expects int, got str 'three'"),
    ("x: numpy.ndarray = None", "unsupported parameter type 'numpy.ndarray'"),
    ("s = {1, 2}", "a set cannot be a parameter"),
    ("def f(:", "line 1 does not parse"),
    ("for i in range(3):\n    pass", "line 1 `for i in range(3):` is not a literal assignment"),
])
def test_parse_errors_name_the_line(source: str, expected: str) -> None:
    with pytest.raises(NotebookError) as info:
        parse_parameters(source)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_check_value_coerces_and_copies() -> None:
    assert check_value("t", 1, "float") == 1.0 and isinstance(check_value("t", 1, "float"), float)
    assert check_value("x", None, "int | None") is None
    assert check_value("x", 4, "Optional[int]") == 4
    default = ["a", "b"]
    copied = check_value("labels", default, "list[str]")
    copied.append("c")
    assert default == ["a", "b"]  # a run cannot mutate the caller's list
    assert check_value("p", (1, 2), "tuple") == (1, 2)
    assert check_value("w", {"a": 1}, "dict[str, float]") == {"a": 1.0}


@pytest.mark.parametrize(("value", "type_text", "expected"), [
    ("3", "int", "parameter 'n' expects int, got str '3'"),
    (True, "int", "expects int, got bool True"),
    (2.5, "int", "expects int, got float 2.5"),
    (1, "str", "expects str, got int 1"),
    (["a", 2], "list[str]", "(n[1])"),
    ({"a": "x"}, "dict[str, float]", "(n['a'])"),
    (0, "bool", "expects bool"),
])
def test_check_value_errors_are_one_line_and_name_the_parameter(value: object, type_text: str,
                                                                expected: str) -> None:
    with pytest.raises(ParameterTypeError) as info:
        check_value("n", value, type_text)
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ConfigError)


@pytest.mark.parametrize(("text", "type_text", "expected"), [
    ("3", "int", 3),
    (" 3 ", "int", 3),
    ("3", "float", 3.0),
    ("1e-3", "float", 0.001),
    ("yes", "bool", True),
    ("False", "bool", False),
    ("3", "str", "3"),
    ("[a, b]", "list[str]", ["a", "b"]),
    ('["a", "b"]', "list", ["a", "b"]),
    ("{a: 1.5}", "dict[str, float]", {"a": 1.5}),
    ("none", "int | None", None),
    ("7", "int | None", 7),
    ("[1, 2]", "Any", "[1, 2]"),  # untyped: read as papermill -p reads it (a string); lists come typed or by -f
])
def test_parse_text_types_command_line_values(text: str, type_text: str, expected: object) -> None:
    assert parse_text("p", text, type_text) == expected


@pytest.mark.parametrize(("text", "type_text"), [("x", "int"), ("1.5", "int"), ("maybe", "bool"),
                                                 ("a", "list[str]"), ("[1, 2]", "list[str]")])
def test_parse_text_rejects(text: str, type_text: str) -> None:
    with pytest.raises(ParameterTypeError, match="parameter 'p' expects"):
        parse_text("p", text, type_text)


def test_cli_parameters_file_then_pairs(tmp_path) -> None:
    params = parse_parameters(CELL)
    file = tmp_path / "params.yaml"
    file.write_text("n_cases: 5\nlabels: [x]\nthreshold: 1\n")
    values = cli_parameters(params, [("n_cases", "7")], file)
    assert values == {"n_cases": 7, "labels": ["x"], "threshold": 1.0}
    with pytest.raises(ConfigError, match=r"unknown parameter 'n_case'; the notebook's parameters are: "
                                          r"n_cases \(int\), threshold \(float\)"):
        cli_parameters(params, [("n_case", "7")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        cli_parameters(params, [], bad)
    file.write_text("n_cases: three\n")
    with pytest.raises(ParameterTypeError, match="parameter 'n_cases' expects int"):
        cli_parameters(params, [], file)


def test_bind_parameters_without_a_parameters_cell() -> None:
    assert bind_parameters([], {}) == {}
    with pytest.raises(ConfigError, match=r"none \(no parameters cell\)"):
        bind_parameters([], {"x": 1})


# -- papermill parity for -p values ------------------------------------------------------------------

def test_untyped_p_values_are_read_as_papermill_reads_them() -> None:
    from protokit.notebook.params import parse_text

    assert parse_text("msg", "0123", "Any") == 123  # YAML would say 83 (octal)
    assert parse_text("msg", "yes", "Any") == "yes"  # YAML would say True
    assert parse_text("msg", "2024-01-01", "Any") == "2024-01-01"  # YAML would make a date
    assert parse_text("msg", "True", "Any") is True and parse_text("msg", "None", "Any") is None
    assert parse_text("msg", "1e3", "Any") == 1000.0


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=20), st.from_regex(r"-?[0-9_]{1,6}(\.[0-9]*)?(e-?[0-9])?", fullmatch=True),
                      st.sampled_from(["True", "False", "None", "true", "nan", "inf", "-0", "0x1f", " 7 ", "1_000"])))
def test_papermill_value_matches_papermills_own_reading(text: str) -> None:
    from papermill.cli import _resolve_type

    from protokit.notebook.params import papermill_value

    ours, theirs = papermill_value(text), _resolve_type(text)
    assert type(ours) is type(theirs)
    assert ours == theirs or (isinstance(ours, float) and ours != ours and theirs != theirs)


# -- papermill parity: `# type:` comments, heading comments, -f/-y/-p/-r order -----------------------------

@pytest.mark.parametrize(("comment", "expected"), [
    ("type: int the help", ("int", "the help")),
    ("type: List[str] Nice list", ("List[str]", "Nice list")),
    ("type: dict[str, int]  help  here", ("dict[str, int]", "help  here")),  # papermill would cut at the space
    ("type: int | None at most", ("int | None", "at most")),
    ("type: ignore", (None, "")),
    ("type: ignore[assignment] note", (None, "note")),
    ("just help", (None, "just help")),
])
def test_type_comments_give_type_and_help(comment: str, expected: tuple[str | None, str]) -> None:
    from protokit.notebook.params import split_type_comment

    assert split_type_comment(comment) == expected


def test_type_comments_and_heading_comments_in_the_cell() -> None:
    params = {p.name: p for p in parse_parameters(
        "# Parameters\nn = None  # type: int | None  how many\nx = 1  # type: float\n"
        "## Parameters:\n# the label\nlabel = 'a'\nk: int = 2  # type: str  annotation wins\n")}
    assert (params["n"].type, params["n"].help) == ("int | None", "how many")
    assert (params["x"].type, params["x"].default, params["x"].help) == ("float", 1, "")
    assert params["label"].help == "the label"  # the heading above it is not help
    assert (params["k"].type, params["k"].help) == ("int", "annotation wins")
    with pytest.raises(NotebookError, match="parameter 'n' expects int, got str 'a'"):
        parse_parameters("n = 'a'  # type: int")


def test_cli_parameters_merge_in_papermills_order(tmp_path) -> None:
    params = parse_parameters(CELL)
    first, second = tmp_path / "a.yaml", tmp_path / "b.json"
    first.write_text("n_cases: 1\nmodel: from-file\nanything: 2024-01-01\nthreshold: 2\n")
    second.write_text('{"n_cases": 2}')
    seen: list[dict[str, object]] = []
    values = cli_parameters(params, [("n_cases", "4"), ("model", "from-p")], [first, second],
                            raw=[("model", "5")], yaml_texts=["n_cases: 3", "verbose: yes"],
                            before_typing=lambda v: seen.append(dict(v)))
    assert values == {"n_cases": 4, "model": "5", "anything": "2024-01-01", "threshold": 2.0, "verbose": True}
    assert seen == [{"n_cases": "4", "model": "5", "anything": "2024-01-01", "threshold": 2, "verbose": True}]
    with pytest.raises(ParameterTypeError, match=r"-r passes the text as a string; .*`-p n_cases 3`"):
        cli_parameters(params, [], raw=[("n_cases", "3")])
    with pytest.raises(ConfigError, match="-y '7' must hold a mapping"):
        cli_parameters(params, [], yaml_texts=["7"])
