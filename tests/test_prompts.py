"""The one template parser (protokit.models.prompts): any text either parses or is a one-line ConfigError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protokit.errors import ConfigError
from protokit.models.prompts import render_template, template_fields

# Text made mostly of the characters that matter to the format syntax.
_SYNTAX = st.text(alphabet=st.sampled_from("{}[]!:.0ars xy_\n"), max_size=40)
_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
_LITERAL = st.text(max_size=12)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_SYNTAX, st.text(max_size=60)))
def test_any_text_parses_or_is_a_config_error(text: str) -> None:
    try:
        fields = template_fields(text)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("the prompt template ")
        return
    assert all(isinstance(f, str) and f for f in fields)
    # Filling it may still fail (a format spec a string does not take), but only as a ConfigError.
    with contextlib.suppress(ConfigError):
        render_template(text, dict.fromkeys(fields, "v"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_LITERAL, _NAME), max_size=6), _LITERAL, st.data())
def test_fields_round_trip(parts: list[tuple[str, str]], tail: str, data: st.DataObject) -> None:
    """A template built from literal text and named fields gives back those names, and fills as expected."""
    def escape(text: str) -> str:
        return text.replace("{", "{{").replace("}", "}}")

    template = "".join(f"{escape(lit)}{{{name}}}" for lit, name in parts) + escape(tail)
    names = [name for _, name in parts]
    assert template_fields(template) == names
    values = {name: data.draw(st.text(max_size=8), label=name) for name in dict.fromkeys(names)}
    expected = "".join(lit + values[name] for lit, name in parts) + tail
    assert render_template(template, values) == (expected if names else template)


@pytest.mark.parametrize(("template", "fields"), [
    ("Classify: {ticket}", ["ticket"]),
    ("{a} and {a}", ["a", "a"]),
    ("{case[title]} by {user.name}", ["case", "user"]),
    ("{x!r:>10}", ["x"]),
    ("{score:{width}}", ["score", "width"]),  # a field in a format spec is needed to fill it too
    ("literal {{braces}}", []),
])
def test_fields(template: str, fields: list[str]) -> None:
    assert template_fields(template) == fields


@pytest.mark.parametrize(("template", "message"), [
    ("{ticket", "the prompt template is malformed (expected '}' before end of string); "
                "write literal braces as {{ and }}"),
    ("a } b", "the prompt template is malformed (Single '}' encountered in format string); "
              "write literal braces as {{ and }}"),
    ("{}", "the prompt template has a positional {} placeholder; name a column: {ticket}"),
    ("{0}", "the prompt template has a positional {} placeholder; name a column: {ticket}"),
    ("{[0]}", "the prompt template has a positional {} placeholder; name a column: {ticket}"),
    ("{x!z}", "the prompt template is malformed (unknown conversion !z in {x})"),
    ("{x:{y:{z}}}", "the prompt template is malformed (fields nested too deep"),
])
def test_malformed_templates_say_the_fix(template: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        template_fields(template)
    assert str(info.value).startswith(message)


def test_messages_name_the_template() -> None:
    with pytest.raises(ConfigError, match=r"^the judge's rubric is malformed"):
        template_fields("{", what="the judge's rubric")
    with pytest.raises(ConfigError, match=r"^the judge template uses \{case\} but there is no value for it"):
        render_template("{case}", {"output": "x"}, what="the judge template")
    with pytest.raises(ConfigError, match=r"could not be filled: .*attribute"):
        render_template("{x.nope}", {"x": "v"})


def test_a_template_without_fields_is_left_as_written() -> None:
    assert render_template("JSON like {{\"a\": 1}}", {}) == "JSON like {{\"a\": 1}}"
    assert render_template("{{literal}} {x}", {"x": 1}) == "{literal} 1"
