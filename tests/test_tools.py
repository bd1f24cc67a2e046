"""Tools: definitions from typed functions, calls through both SDKs' native tool APIs against the sandbox,
the tool_call scorer, the tool_calls column, the cache, and run_tools' bounded loop."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
from typing import Annotated, Any, Literal, TypedDict

import anthropic
import jsonschema
import openai
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protokit as pk
from protokit.models.tools import check_tools, function_tool, parse_docstring

KEY = "sandbox-key"
WEATHER = 'tool:get_weather {"city": "Paris", "unit": "c"}'


def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
    """Current weather in a city.

    Args:
        city: The city's name,
            as people write it.
        unit: Celsius or Fahrenheit.
    """
    return f"18 degrees {unit} and sunny in {city}"


def get_time(zone: str) -> str:
    """The time in a time zone."""
    return f"12:00 in {zone}"


WEATHER_JSON = {"name": "get_weather", "description": "Current weather in a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                               "unit": {"type": "string", "enum": ["c", "f"]}},
                               "required": ["city"]}}


def model(sb, provider: str, name: str = "echo", **kw):
    url = sb.openai_base_url if provider == "openai" else sb.anthropic_base_url
    return pk.model(f"{provider}:{name}", base_url=url, api_key=KEY, **kw)


BOTH = pytest.mark.parametrize("provider", ["openai", "anthropic"])


# -- the sandbox answers tool calls in both wire formats, as the SDKs read them ------------------------------------


def test_sandbox_openai_tool_calls_json_and_stream_through_the_sdk(sandbox):
    client = openai.OpenAI(base_url=sandbox.openai_base_url, api_key=KEY, max_retries=0)
    tools = [{"type": "function", "function": WEATHER_JSON}]
    messages = [{"role": "user", "content": WEATHER + '\ntool:get_weather {"city": "Rome"}'}]
    r = client.chat.completions.create(model="echo", messages=messages, tools=tools)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls]
    assert calls == [("get_weather", {"city": "Paris", "unit": "c"}), ("get_weather", {"city": "Rome"})]
    assert all(c.id.startswith("call_") and c.type == "function" for c in choice.message.tool_calls)
    # The SDK's own stream accumulator rebuilds the same calls from the chunks.
    with client.chat.completions.stream(model="echo", messages=messages, tools=tools) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in streamed] == calls
    assert final.choices[0].finish_reason == "tool_calls"


def test_sandbox_anthropic_tool_use_json_and_stream_through_the_sdk(sandbox):
    client = anthropic.Anthropic(base_url=sandbox.anthropic_base_url, api_key=KEY, max_retries=0)
    tools = [{"name": "get_weather", "description": "weather", "input_schema": WEATHER_JSON["parameters"]}]
    messages = [{"role": "user", "content": WEATHER}]
    m = client.messages.create(model="echo", max_tokens=100, messages=messages, tools=tools)
    assert m.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in m.content] == [("tool_use", "get_weather",
                                                               {"city": "Paris", "unit": "c"})]
    with client.messages.stream(model="echo", max_tokens=100, messages=messages, tools=tools) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert "content_block_start" in events and "input_json" in events  # input_json: the SDK's parsed delta
    assert [(b.type, b.name, b.input) for b in final.content] == [("tool_use", "get_weather",
                                                                   {"city": "Paris", "unit": "c"})]
    assert final.stop_reason == "tool_use"


def test_sandbox_answers_text_without_tools_or_for_an_unknown_tool(sandbox):
    client = openai.OpenAI(base_url=sandbox.openai_base_url, api_key=KEY, max_retries=0)
    plain = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": WEATHER}])
    assert plain.choices[0].message.content == WEATHER and not plain.choices[0].message.tool_calls
    other = [{"type": "function", "function": {**WEATHER_JSON, "name": "other"}}]
    r = client.chat.completions.create(model="echo", messages=[{"role": "user", "content": WEATHER}], tools=other)
    assert r.choices[0].message.content == WEATHER and not r.choices[0].message.tool_calls


# -- pk.model / complete / stream: tool_calls through both providers ------------------------------------------------


@BOTH
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_tool_calls_through_both_providers_streamed_and_not(sandbox, provider, stream):
    pk.cache.configure(mode="off")
    m = model(sandbox, provider, tools=[get_weather, get_time])
    prompt = WEATHER + '\ntool:get_time {"zone": "UTC"}'
    if stream:
        s = m.stream(prompt)
        assert "".join(s) == ""
        r = s.response
        assert r is not None
    else:
        r = m.complete(prompt)
    assert r.tool_calls == [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}},
                            {"name": "get_time", "arguments": {"zone": "UTC"}}]
    assert r.text == "" and r.finish_reason in ("tool_calls", "tool_use")
    assert r.output_tokens and r.output_tokens > 0


@BOTH
def test_per_call_tools_replace_the_models_and_json_definitions_in_every_shape(sandbox, provider):
    m = model(sandbox, provider, tools=[get_time])
    assert m.complete(WEATHER).tool_calls == []  # the model's tools have no get_weather: it answers in text
    openai_shape = {"type": "function", "function": WEATHER_JSON}
    anthropic_shape = {"name": "get_weather", "input_schema": WEATHER_JSON["parameters"]}
    for tools in ([WEATHER_JSON], [openai_shape], [anthropic_shape], WEATHER_JSON):
        r = m.complete(WEATHER, tools=tools)
        assert r.tool_calls == [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}], tools


def test_async_complete_with_tools(sandbox):
    import asyncio

    m = model(sandbox, "anthropic")

    async def go():
        return await m.acomplete(WEATHER, tools=[get_weather])

    assert asyncio.run(go()).tool_calls[0]["arguments"] == {"city": "Paris", "unit": "c"}


def test_a_callable_model_gets_the_definitions_and_may_return_tool_calls():
    seen: list[Any] = []

    def bot(prompt: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
        seen.append(tools)
        return {"text": "", "tool_calls": [{"name": "get_weather", "arguments": {"city": prompt}}]}

    r = pk.model(bot, tools=[get_weather]).complete("Oslo")
    assert r.tool_calls == [{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    assert seen[0][0]["name"] == "get_weather" and seen[0][0]["parameters"]["required"] == ["city"]


# -- typed function -> JSON schema ----------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


class Filters(TypedDict):
    tag: str


class Address(pydantic.BaseModel):
    street: str
    zip_code: str | None = None


def everything(name: str, count: int, ratio: float, flag: bool, color: Color, tags: list[str],
               scores: dict[str, float], where: Point, filters: Filters, address: Address,
               pair: tuple[int, str], mode: Literal[1, 2] = 1, note: str | None = None,
               size: Annotated[int, "how many, at most 10"] = 3) -> None:
    """Do everything.

    A second paragraph.

    Parameters
    ----------
    name : str
        Who.
    count : int
        How many
        of them.
    """


def test_function_schema_from_signature_hints_and_numpy_docstring():
    d = function_tool(everything)
    assert d["name"] == "everything"
    assert d["description"] == "Do everything.\n\nA second paragraph."
    p = d["parameters"]
    props = p["properties"]
    assert p["type"] == "object" and p["additionalProperties"] is False
    assert p["required"] == ["name", "count", "ratio", "flag", "color", "tags", "scores", "where", "filters",
                             "address", "pair"]
    assert props["name"] == {"type": "string", "description": "Who."}
    assert props["count"] == {"type": "integer", "description": "How many of them."}
    assert props["ratio"] == {"type": "number"} and props["flag"] == {"type": "boolean"}
    assert props["color"] == {"type": "string", "enum": ["red", "blue"]}
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["scores"] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert props["where"]["properties"] == {"x": {"type": "number"}, "y": {"type": "number"}}
    assert props["where"]["required"] == ["x"]
    assert props["filters"]["required"] == ["tag"]
    assert props["address"]["properties"]["street"]["type"] == "string"
    assert props["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert props["mode"] == {"type": "integer", "enum": [1, 2], "default": 1}
    assert props["note"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert props["size"] == {"type": "integer", "description": "how many, at most 10", "default": 3}
    jsonschema.Draft202012Validator.check_schema(p)
    jsonschema.validate({"name": "a", "count": 1, "ratio": 0.5, "flag": True, "color": "red", "tags": [],
                         "scores": {}, "where": {"x": 1}, "filters": {"tag": "t"},
                         "address": {"street": "s"}, "pair": [1, "a"]}, p)


def test_google_and_sphinx_docstrings_describe_parameters():
    d = function_tool(get_weather)
    assert d["description"] == "Current weather in a city."
    assert d["parameters"]["properties"]["city"]["description"] == "The city's name, as people write it."
    assert d["parameters"]["properties"]["unit"] == {"type": "string", "enum": ["c", "f"],
                                                     "description": "Celsius or Fahrenheit.", "default": "c"}

    def sphinx(a: int, b: str) -> None:
        """Sphinx style.

        :param a: the first
        :param str b: the second
        :returns: nothing
        """

    assert parse_docstring(sphinx.__doc__) == ("Sphinx style.", {"a": "the first", "b": "the second"})
    assert parse_docstring(None) == ("", {})


@pytest.mark.parametrize("fn, problem", [
    (lambda x: x, "name of 1-64"),
    (lambda: None, "name of 1-64"),
])
def test_a_lambda_is_refused(fn, problem):
    with pytest.raises(pk.ConfigError, match=problem):
        check_tools([fn])


def test_bad_tools_are_one_line_config_errors():
    def untyped(x):  # type: ignore[no-untyped-def]
        return x

    def star(*args: int) -> None: ...

    def odd(x: complex) -> None: ...

    bad: list[tuple[Any, str]] = [
        ([untyped], "no usable type hint"), ([star], "named arguments only"), ([odd], "has no JSON form"),
        ([get_weather, get_weather], "two tools are named"), ([{"name": "x y"}], "needs a 'name'"),
        ([{"name": "x", "parameters": {"type": "array"}}], "type 'object'"),
        ([{"name": "x", "params": {}}], "unknown key 'params'"), ("get_weather", "must be a list"),
        ([42], "must be a function or a JSON definition"),
        ([{"name": "x", "parameters": {"type": "object", "properties": 3}}], "invalid JSON schema"),
    ]
    for tools, problem in bad:
        with pytest.raises(pk.ConfigError, match=problem):
            pk.model("openai:x", tools=tools)
    with pytest.raises(pk.ConfigError, match="run_tools=True needs Python functions"):
        pk.model("openai:x", tools=[WEATHER_JSON], run_tools=True).request("hi")
    with pytest.raises(pk.ConfigError, match="add run_tools=True"):
        pk.model("openai:x", max_steps=3)
    with pytest.raises(pk.ConfigError, match="unknown option 'tools'"):
        class Plain(pk.Model):
            provider = "plain"
            options = frozenset({"temperature"})
        Plain("m", tools=[get_weather])


_NAMES = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "Pc")), min_size=1, max_size=80)
_DOCS = st.one_of(st.none(), st.text(max_size=300),
                  st.lists(st.sampled_from(["Args:", "Parameters", "----------", "  a: x", "a : int", ":param a: y",
                                            "Returns:", "\"}{\\", "\x00", "\ud800", "  ", "", "a (int): z",
                                            ":returns:", "Raises", "    more text"]),
                           max_size=12).map("\n".join))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=_NAMES, doc=_DOCS, params=st.lists(_NAMES.filter(str.isidentifier), max_size=4, unique=True))
def test_function_to_schema_survives_hostile_names_and_docstrings(name, doc, params):
    def fn(**kwargs: Any) -> None: ...

    fn.__name__ = name
    fn.__doc__ = doc
    fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, annotation=int) for p in params])
    try:
        d = function_tool(fn)
    except pk.ConfigError as exc:
        # Only a name the providers would refuse is refused, in one line.
        assert not (name.isascii() and len(name) <= 64 and all(c.isalnum() or c in "_-" for c in name))
        assert "\n" not in str(exc)
        return
    assert d["name"] == name
    text = json.dumps(d, ensure_ascii=False)
    text.encode("utf-8")  # no lone surrogate survives: the definition goes out as UTF-8
    assert json.loads(text) == d
    assert set(d) == {"name", "description", "parameters"} and isinstance(d["description"], str)
    assert list(d["parameters"]["properties"]) == params
    assert all(d["parameters"]["properties"][p]["type"] == "integer" for p in params)
    jsonschema.Draft202012Validator.check_schema(d["parameters"])
    pk.cache.request_key({"options": {"tools": [d]}})  # a cache key can be made of it


# -- the tool_call scorer -------------------------------------------------------------------------------------------


def test_tool_call_scorer_subset_exact_and_reasons():
    calls = [{"name": "get_time", "arguments": {}},
             {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c", "extra": {"a": 1, "b": 2}}}]
    subset = pk.scorers.tool_call("get_weather", {"city": "Paris", "extra": {"a": 1}})
    assert subset(calls).value == 1.0
    assert pk.scorers.tool_call("get_weather")(calls).value == 1.0
    exact = pk.scorers.tool_call("get_weather", {"city": "Paris"}, match="exact")
    s = exact(calls)
    assert s.value == 0.0 and "expected exact" in (s.reason or "")
    assert pk.scorers.tool_call("get_weather", {"city": "Paris", "unit": "c", "extra": {"a": 1, "b": 2}},
                                match="exact")(calls).value == 1.0
    s = pk.scorers.tool_call("book")(calls)
    assert s.value == 0.0 and s.reason == "no call of book (calls: get_time, get_weather)"
    assert pk.scorers.tool_call("book")([]).reason == "no call of book (calls: none)"
    assert pk.scorers.tool_call("get_weather", {"city": "Rome"})(calls).value == 0.0
    by_column = pk.scorers.tool_call("get_weather", "expected", scorer_name="weather")
    assert by_column.name == "weather" and by_column.columns == ("expected",)
    assert by_column(calls, {"expected": '{"city": "Paris"}'}).value == 1.0
    assert by_column(calls, {"expected": {"city": "Oslo"}}).value == 0.0
    with pytest.raises(pk.ConfigError, match="match must be"):
        pk.scorers.tool_call("x", match="fuzzy")


def test_tool_call_scorer_reads_a_response(sandbox):
    r = model(sandbox, "openai").complete(WEATHER, tools=[get_weather])
    assert pk.scorers.tool_call("get_weather", {"city": "Paris"})(r).value == 1.0


# -- compare: the tool_calls column, scoring, the cache ------------------------------------------------------------


def test_compare_with_tools_gives_a_scored_tool_calls_column(sandbox):
    cases = [{"q": WEATHER, "expected": {"city": "Paris"}}, {"q": 'tool:get_time {"zone": "UTC"}',
                                                             "expected": {"city": "Paris"}}, {"q": "hello"}]
    models = [model(sandbox, "openai"), model(sandbox, "anthropic")]
    cmp = pk.compare(models, "{q}", cases, tools=[get_weather, get_time],
                     scorers=[pk.scorers.tool_call("get_weather", "expected")])
    r = cmp.results
    cols = list(r.columns)
    assert cols.index("tool_calls") == cols.index("output") + 1 and "parsed" not in cols
    by = {(row.case, row.model): row for row in r.itertuples()}
    for m in ("openai:echo", "anthropic:echo"):
        assert by[(0, m)].tool_calls == [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}]
        assert by[(0, m)].score_tool_call == 1.0
        assert by[(1, m)].tool_calls == [{"name": "get_time", "arguments": {"zone": "UTC"}}]
        assert by[(1, m)].score_tool_call == 0.0
        assert by[(2, m)].tool_calls == [] and by[(2, m)].output == "hello"
    assert r["error"].isna().all()
    stored = pk.load_run(cmp.run_id)
    assert stored.results["tool_calls"].tolist() == r["tool_calls"].tolist()
    assert cmp.options["options"]["tools"][0]["name"] == "get_weather"  # stored as JSON, not a function repr


def test_compare_without_tools_has_no_tool_calls_column_and_a_clash_is_refused(sandbox):
    r = pk.compare([model(sandbox, "openai")], "{q}", [{"q": "hi"}]).results
    assert "tool_calls" not in r.columns and "parsed" not in r.columns
    with pytest.raises(pk.ConfigError, match="clashes with the results column 'tool_calls'"):
        pk.compare([model(sandbox, "openai")], "{q}", [{"q": "hi", "tool_calls": 1}], tools=[get_weather])


@BOTH
def test_a_different_tool_set_is_a_different_recording_and_replay_restores_tool_calls(sandbox, provider, tmp_path):
    m = model(sandbox, provider)
    first = m.complete(WEATHER, tools=[get_weather])
    assert not first.cached
    assert m.complete(WEATHER, tools=[get_weather]).cached
    assert not m.complete(WEATHER, tools=[get_weather, get_time]).cached  # another tool set, another key
    assert not m.complete(WEATHER).cached  # no tools: another key again

    def get_weather_v2(city: str) -> str:
        """Another description."""
        return city

    get_weather_v2.__name__ = "get_weather"
    assert not m.complete(WEATHER, tools=[get_weather_v2]).cached  # same name, another definition
    before = sandbox.stats()["requests"]
    pk.cache.configure(mode="replay")
    again = m.complete(WEATHER, tools=[get_weather])
    assert again.cached and again.tool_calls == first.tool_calls and again.text == first.text
    assert sandbox.stats()["requests"] == before
    stored = pk.cache.get_cache().get(again.key or "")
    assert stored is not None and stored["tool_calls"] == first.tool_calls


def test_options_scrubbing_still_holds_with_tools(sandbox):
    leaky = {**WEATHER_JSON, "description": "uses sk-proj-Abc123Def456Ghi789Jkl012Mno345 to look up weather"}
    m = pk.model("openai:echo", base_url=sandbox.openai_base_url, api_key="sk-proj-Zyx987Wvu654Tsr321Qpo098Nml765")
    r = m.complete(WEATHER, tools=[leaky])
    assert r.tool_calls[0]["name"] == "get_weather"
    records = pk.cache.get_cache().entries()
    text = json.dumps(records)
    assert "Abc123Def456Ghi789" not in text and "Zyx987Wvu654" not in text
    (record,) = records
    assert record["request"]["options"]["tools"][0]["name"] == "get_weather"
    assert record["entry"]["tool_calls"] == r.tool_calls


# -- run_tools: execute Python tools, feed results back, bounded ------------------------------------------------


@BOTH
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_run_tools_runs_the_function_and_feeds_its_result_back(sandbox, provider, stream):
    m = model(sandbox, provider, tools=[get_weather], run_tools=True)
    if stream:
        s = m.stream(WEATHER)
        text = "".join(s)
        r = s.response
        assert r is not None and text == r.text
    else:
        r = m.complete(WEATHER)
    # The echo model says the tool's result back: the result reached it in the provider's own format.
    assert r.text == "18 degrees c and sunny in Paris"
    assert r.tool_calls == [{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}]
    assert sandbox.stats()["requests"] == 2
    assert r.input_tokens and r.input_tokens > 5  # both steps' tokens


def test_run_tools_steps_are_cached_and_replay_offline(sandbox):
    runs: list[str] = []

    def lookup(city: str) -> str:
        """Look it up."""
        runs.append(city)
        return f"found {city}"

    m = model(sandbox, "anthropic")
    first = m.complete('tool:lookup {"city": "Oslo"}', tools=[lookup], run_tools=True)
    assert first.text == "found Oslo" and not first.cached
    pk.cache.configure(mode="replay")
    before = sandbox.stats()["requests"]
    again = m.complete('tool:lookup {"city": "Oslo"}', tools=[lookup], run_tools=True)
    assert (again.text, again.tool_calls, again.cached) == (first.text, first.tool_calls, True)
    assert sandbox.stats()["requests"] == before and runs == ["Oslo", "Oslo"]


def test_run_tools_is_bounded_by_max_steps_and_tool_errors_go_back_to_the_model():
    asked: list[list[dict[str, Any]]] = []

    def insistent(prompt: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        asked.append(messages)
        return {"text": "", "tool_calls": [{"name": "broken", "arguments": {"n": len(messages)}}]}

    def broken(n: int) -> str:
        """Always fails."""
        raise RuntimeError(f"no luck {n}")

    r = pk.model(insistent, tools=[broken]).complete("go", run_tools=True, max_steps=3)
    assert len(asked) == 3  # bounded: three calls of the model, then the last answer as it is
    assert [c["name"] for c in r.tool_calls] == ["broken"] * 3
    results = [m for m in asked[-1] if m["role"] == "tool"]
    assert [m["content"] for m in results] == ["error: RuntimeError: no luck 1", "error: RuntimeError: no luck 3"]
    assert [m["tool_call_id"] for m in results] == ["call_0_0", "call_1_0"]
    assert pk.model(insistent, tools=[broken]).complete("go").tool_calls == [{"name": "broken",
                                                                              "arguments": {"n": 1}}]


def test_compare_with_run_tools(sandbox):
    cmp = pk.compare([model(sandbox, "openai"), model(sandbox, "anthropic")], "{q}", [{"q": WEATHER}],
                     tools=[get_weather], run_tools=True, max_steps=2,
                     scorers=[pk.scorers.tool_call("get_weather", {"city": "Paris"}),
                              pk.scorers.contains(text="sunny")])
    r = cmp.results
    assert r["output"].tolist() == ["18 degrees c and sunny in Paris"] * 2
    assert r["score_tool_call"].tolist() == [1.0, 1.0] and r["score_contains"].tolist() == [1.0, 1.0]
