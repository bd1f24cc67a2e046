"""Structured output: schema= (a JSON schema or a pydantic class) through both SDKs against the sandbox,
Response.parsed, the schema cell error, the parsed column, the cache key and replay."""

from __future__ import annotations

import json

import pandas as pd
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protokit as pk
from protokit.models.structured import STRICT_UNSUPPORTED, strict_schema

KEY = "sandbox-key"
PERSON = {"title": "Person", "type": "object",
          "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
          "required": ["name", "age"]}
ADA = '{"name": "Ada", "age": 36}'


class Person(pydantic.BaseModel):
    name: str
    age: int
    nickname: str | None = None


def model(sb, provider: str, name: str = "echo", **kw):
    url = sb.openai_base_url if provider == "openai" else sb.anthropic_base_url
    return pk.model(f"{provider}:{name}", base_url=url, api_key=KEY, **kw)


BOTH = pytest.mark.parametrize("provider", ["openai", "anthropic"])
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])


def ask(m, prompt, stream, **kw):
    if not stream:
        return m.complete(prompt, **kw)
    s = m.stream(prompt, **kw)
    text = "".join(s)
    assert s.response is not None and text == s.response.text
    return s.response


# -- both providers, streamed and not ------------------------------------------------------------------------------


@BOTH
@STREAM
def test_a_matching_answer_is_parsed(sandbox, provider, stream):
    pk.cache.configure(mode="off")
    r = ask(model(sandbox, provider), ADA, stream, schema=PERSON)
    assert r.parsed == {"name": "Ada", "age": 36}
    assert json.loads(r.text) == r.parsed and r.tool_calls == []


@BOTH
@STREAM
def test_a_pydantic_class_gives_an_instance(sandbox, provider, stream):
    pk.cache.configure(mode="off")
    r = ask(model(sandbox, provider, schema=Person), ADA, stream)
    assert isinstance(r.parsed, Person) and r.parsed == Person(name="Ada", age=36)


@BOTH
@STREAM
def test_a_non_matching_answer_is_a_schema_error_carrying_the_answer(sandbox, provider, stream):
    pk.cache.configure(mode="off")
    m = model(sandbox, provider)
    with pytest.raises(pk.SchemaError, match=r"does not match schema Person: age: -1 is less than the minimum") as e:
        ask(m, '{"name": "Ada", "age": -1}', stream, schema=PERSON)
    err = e.value
    assert isinstance(err, pk.ProviderError) and err.kind == "schema" and not err.retryable
    assert err.response is not None and json.loads(err.response.text) == {"name": "Ada", "age": -1}
    assert err.response.output_tokens and err.response.output_tokens > 0
    with pytest.raises(pk.SchemaError, match="age: Field required"):
        ask(m, '{"name": "Ada"}', stream, schema=Person)


def test_an_answer_that_is_not_json_is_a_schema_error(sandbox):
    with pytest.raises(pk.SchemaError, match=r"the answer is not JSON .* schema Person was asked for: 'hello there'"):
        model(sandbox, "openai").complete("hello there", schema=PERSON)
    # Anthropic answers through the forced tool: the sandbox wraps a text that is not an object.
    with pytest.raises(pk.SchemaError, match=r"\(root\): 'name' is a required property"):
        model(sandbox, "anthropic").complete("hello there", schema=PERSON)


def test_a_callable_model_and_a_fallback_are_checked_too(sandbox):
    assert pk.model(lambda p: p, name="mirror").complete(ADA, schema=Person).parsed == Person(name="Ada", age=36)
    with pytest.raises(pk.SchemaError):
        pk.model(lambda p: p, name="mirror").complete("[1]", schema=Person)
    # A member whose answer does not match counts as failed: the next is asked, and the class reaches it.
    chain = pk.fallback(model(sandbox, "openai", name="wordy"), model(sandbox, "anthropic"))
    r = chain.complete(ADA, schema=Person)
    assert isinstance(r.parsed, Person) and r.served_by == "anthropic:echo"


# -- what each provider is sent ---------------------------------------------------------------------------------


def test_openai_is_sent_a_strict_json_schema_response_format(sandbox):
    m = model(sandbox, "openai")
    params = m._params(m.request("hi", schema=Person))
    fmt = params["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Person" and fmt["json_schema"]["strict"]
    sent = fmt["json_schema"]["schema"]
    assert sent["additionalProperties"] is False and sent["required"] == ["name", "age", "nickname"]
    assert "schema" not in params


def test_anthropic_is_sent_one_forced_tool_and_any_beside_other_tools(sandbox):
    m = model(sandbox, "anthropic")
    params = m._params(m.request("hi", schema=PERSON))
    assert params["tool_choice"] == {"type": "tool", "name": "Person"}
    assert [t["name"] for t in params["tools"]] == ["Person"] and params["tools"][0]["input_schema"] == PERSON

    def lookup(q: str) -> str:
        """Look it up."""
        return q

    params = m._params(m.request("hi", schema=PERSON, tools=[lookup]))
    assert params["tool_choice"] == {"type": "any"} and [t["name"] for t in params["tools"]] == ["lookup", "Person"]
    r = m.complete(ADA, schema=PERSON, tools=[lookup])  # the sandbox picks the last tool: the schema's
    assert r.parsed == {"name": "Ada", "age": 36} and r.tool_calls == []


def test_strict_form_closes_objects_and_keeps_values():
    schema = {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "integer"}}},
                                               "e": {"enum": [{"properties": 1}]}}}
    strict = strict_schema(schema)
    assert strict["required"] == ["a", "e"] and strict["additionalProperties"] is False
    assert strict["properties"]["a"]["required"] == ["b"]
    assert strict["properties"]["e"] == {"enum": [{"properties": 1}]}
    assert schema["properties"]["a"] == {"type": "object", "properties": {"b": {"type": "integer"}}}  # not changed


# Property names that are also keywords: the strict form must treat them as names.
_NAMES = st.sampled_from(["properties", "required", "minLength", "not", "items", "enum", "type", "name"]) | st.text(
    min_size=1, max_size=6)
_LEAF = st.fixed_dictionaries(
    {"type": st.sampled_from(["string", "integer", "boolean"])},
    optional={"minLength": st.integers(0, 3), "maxLength": st.integers(3, 9), "description": st.text(max_size=5),
              "enum": st.lists(st.integers(), max_size=2)})
_SCHEMA = st.recursive(_LEAF, lambda inner: st.fixed_dictionaries(
    {"type": st.just("object"), "properties": st.dictionaries(_NAMES, inner, min_size=1, max_size=3)},
    optional={"minProperties": st.integers(0, 2), "not": inner, "title": st.text(max_size=4)})
    | st.fixed_dictionaries({"type": st.just("array"), "items": inner}, optional={"uniqueItems": st.booleans()}),
    max_leaves=8)


def _schemas(schema, path=()):
    """(path, schema) of every subschema reached through properties and items."""
    yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from _schemas(sub, (*path, "properties", name))
    if isinstance(schema.get("items"), dict):
        yield from _schemas(schema["items"], (*path, "items"))


@settings(max_examples=200, deadline=None)
@given(schema=_SCHEMA)
def test_strict_form_keeps_every_name_closes_every_object_and_drops_refused_keywords(schema):
    strict = strict_schema(schema)
    given_shape = {path: set(sub.get("properties") or ()) for path, sub in _schemas(schema)}
    strict_shape = {path: set(sub.get("properties") or ()) for path, sub in _schemas(strict)}
    assert strict_shape == given_shape  # the same properties, by name, at the same places
    for _, sub in _schemas(strict):
        assert not STRICT_UNSUPPORTED & set(sub)
        if "properties" in sub:
            assert sub["required"] == list(sub["properties"]) and sub["additionalProperties"] is False


def test_a_dropped_keyword_is_still_checked_on_the_answer(sandbox):
    """minLength is not sent to OpenAI's strict mode, but an answer that breaks it is a schema error."""
    schema = {"title": "Code", "type": "object", "properties": {"code": {"type": "string", "minLength": 4}}}
    sent = model(sandbox, "openai")._params(model(sandbox, "openai").request("hi", schema=schema))
    assert "minLength" not in json.dumps(sent["response_format"])
    r = pk.compare([model(sandbox, "openai")], "{a}", [{"a": '{"code": "abcd"}'}, {"a": '{"code": "ab"}'}],
                   schema=schema).results
    assert r["error"].tolist()[0] is None or pd.isna(r["error"].tolist()[0])
    assert r["error"].tolist()[1] == "schema" and "ab" in r["error_message"].tolist()[1]


@pytest.mark.parametrize("schema, problem", [
    ({"type": "array"}, "must describe an object"),
    ({"type": "object", "properties": {"a": {"type": 5}}}, "invalid JSON schema"),
    ("Person", "a JSON schema dict or a pydantic model class"),
    (Person(name="a", age=1), "a JSON schema dict or a pydantic model class"),
])
def test_bad_schemas_are_config_errors(schema, problem):
    with pytest.raises(pk.ConfigError, match=problem):
        pk.model("openai:x", schema=schema)


def test_schema_and_response_format_cannot_both_be_given():
    with pytest.raises(pk.ConfigError, match="use one"):
        pk.model("openai:x", response_format="json").request("hi", schema=PERSON)


# -- the cache ---------------------------------------------------------------------------------------------------


@BOTH
def test_replay_restores_parsed_and_the_schema_error(sandbox, provider):
    m = model(sandbox, provider)
    live = m.complete(ADA, schema=Person)
    with pytest.raises(pk.SchemaError) as live_error:
        m.complete('{"name": "Bob"}', schema=Person)
    assert not live.cached
    pk.cache.configure(mode="replay")
    before = sandbox.stats()["requests"]
    again = m.complete(ADA, schema=Person)
    assert again.cached and again.parsed == live.parsed and isinstance(again.parsed, Person)
    assert again.text == live.text
    with pytest.raises(pk.SchemaError) as replayed_error:  # the answer was recorded: its error replays
        m.complete('{"name": "Bob"}', schema=Person)
    assert str(replayed_error.value) == str(live_error.value) and replayed_error.value.response.cached
    assert sandbox.stats()["requests"] == before


def test_another_schema_is_another_recording(sandbox):
    m = model(sandbox, "openai")
    assert not m.complete(ADA, schema=PERSON).cached
    assert m.complete(ADA, schema=PERSON).cached
    assert not m.complete(ADA).cached
    assert not m.complete(ADA, schema={**PERSON, "required": ["name"]}).cached
    assert not m.complete(ADA, schema=Person).cached  # the class's own JSON schema differs from PERSON


# -- compare: the parsed column and per-cell schema errors --------------------------------------------------------


def test_compare_with_schema_gives_a_parsed_column_and_schema_cell_errors(sandbox):
    cases = [{"q": ADA}, {"q": '{"name": "Bob"}'}, {"q": "not json"}]
    models = [model(sandbox, "openai"), model(sandbox, "anthropic")]
    cmp = pk.compare(models, "{q}", cases, schema=Person,
                     scorers=[pk.scorers.custom(lambda parsed: parsed.age > 30, name="adult", reads="parsed")])
    r = cmp.results
    cols = list(r.columns)
    assert cols.index("parsed") == cols.index("output") + 1 and "tool_calls" not in cols
    by = {(row.case, row.model): row for row in r.itertuples()}
    for m in ("openai:echo", "anthropic:echo"):
        assert by[(0, m)].parsed == Person(name="Ada", age=36) and pd.isna(by[(0, m)].error)
        assert by[(0, m)].score_adult == 1.0
        assert by[(1, m)].error == "schema" and "age: Field required" in by[(1, m)].error_message
        assert by[(1, m)].output == '{"name": "Bob"}' and by[(1, m)].parsed is None  # what the model said, kept
        assert by[(2, m)].error == "schema"
    assert cmp.summary.set_index("model")["errors"].tolist() == [2, 2]
    stored = pk.load_run(cmp.run_id).results
    assert stored["parsed"].tolist()[:2] == [{"name": "Ada", "age": 36, "nickname": None}] * 2
    assert cmp.options["options"]["schema"]["title"] == "Person"


def test_scorers_that_read_parsed():
    class Parsed(pk.scorers.Scorer):
        reads = "parsed"

        def score(self, output, case):
            return output is not None and output["age"] == case["age"]

    cmp = pk.compare([pk.model(lambda p: p, name="mirror")], "{q}", [{"q": ADA, "age": 36}], schema=PERSON,
                     scorers=[Parsed("age_ok")])
    assert cmp.results["score_age_ok"].tolist() == [1.0]
