"""Answers are read from the provider's JSON, not from the SDK's pydantic objects.

The adapters post through the SDK (its request building, auth, timeouts and error types) but read
the answer as the dicts its JSON decodes to (``protokit.models._clients.post_json``). What that
must not change or lose: streamed and non-streamed answers agree, tool calls and schema answers
are put back together from their pieces, refusals and error events inside a stream are classified,
and any body of an unexpected shape is one ServerError, never a KeyError out of protokit.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protokit as pk
from protokit.errors import ContentFilterError, ProtokitError, ServerError
from protokit.models.anthropic_adapter import AnthropicModel, _Accumulator, read_message
from protokit.models.base import Usage
from protokit.models.openai_adapter import OpenAIModel, _read_chunk, read_completion, streamed_calls
from protokit.sandbox import Sandbox

PROVIDERS = ("openai", "anthropic")


def _model(sb: Sandbox, provider: str, **kw: Any) -> pk.models.Model:
    url = sb.openai_base_url if provider == "openai" else sb.anthropic_base_url
    return pk.model(f"{provider}:echo", base_url=url, api_key="sk-test", **kw)


def _lookup(city: str, days: int = 1) -> str:
    """Look up the weather."""
    return f"{city}:{days}"


@pytest.fixture(autouse=True)
def _no_cache() -> None:
    pk.cache.configure(mode="off")


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("prompt, options", [
    ("a plain answer, with ünïcödé and \"quotes\"", {}),
    ('tool:_lookup {"city": "Zürich", "days": 3}', {"tools": [_lookup]}),
    ('{"label": "billing", "confidence": 0.75}', {"schema": {"type": "object", "properties": {
        "label": {"type": "string"}, "confidence": {"type": "number"}}, "required": ["label", "confidence"],
        "additionalProperties": False}}),
], ids=["text", "tool", "schema"])
def test_streamed_and_whole_answers_agree(sandbox: Sandbox, provider: str, prompt: str,
                                          options: dict[str, Any]) -> None:
    m = _model(sandbox, provider)
    whole = m.complete(prompt, **options)
    chunks = m.stream(prompt, **options)
    pieces = list(chunks)
    streamed = chunks.response
    assert streamed is not None
    assert "".join(pieces) == streamed.text == whole.text
    assert streamed.tool_calls == whole.tool_calls
    assert (streamed.input_tokens, streamed.output_tokens, streamed.finish_reason, streamed.provider_model) == (
        whole.input_tokens, whole.output_tokens, whole.finish_reason, whole.provider_model)
    if "tools" in options:
        assert whole.tool_calls == [{"name": "_lookup", "arguments": {"city": "Zürich", "days": 3}}]
    if "schema" in options:
        assert whole.parsed == streamed.parsed == {"label": "billing", "confidence": 0.75}
    assert isinstance(whole.raw, dict)  # the provider's JSON, as sent


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [False, True])
def test_a_refusal_is_a_content_filter_error(sandbox: Sandbox, provider: str, stream: bool) -> None:
    m = _model(sandbox, provider)
    with pytest.raises(ContentFilterError, match=r"refused \(that is not something I can help with\)"):
        if stream:
            list(m.stream("refuse: that is not something I can help with"))
        else:
            m.complete("refuse: that is not something I can help with")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_error_event_mid_stream_is_a_classified_server_error(sandbox: Sandbox, provider: str) -> None:
    """The stream began with 200; the error event inside it still decides the error's kind."""
    sandbox.set_faults("midstream=1", seed=0)
    m = _model(sandbox, provider)
    with pytest.raises(ServerError, match="overloaded mid-stream") as info:
        list(m.stream("hello there, how are you"))
    assert info.value.retryable


@pytest.mark.parametrize("provider", PROVIDERS)
def test_compare_records_no_answer_for_a_broken_stream(sandbox: Sandbox, provider: str, tmp_path) -> None:
    """A stream cut by an error event is an error row, and nothing half-streamed lands in the cache."""
    pk.cache.configure(path=tmp_path / "cache.db", mode="record")
    sandbox.set_faults("midstream=1", seed=0)
    m = _model(sandbox, provider)
    res = pk.compare([m], "{q}", [{"q": "one two three four"}], stream=True, retries=0).results
    assert list(res["error"]) == ["server"]
    assert "overloaded mid-stream" in res["error_message"].iloc[0]
    assert pk.cache.get_cache().stats()["entries"] == 0


# -- any body: one ServerError (or a ContentFilterError), never an exception of another kind ----------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
# Bodies near the real shapes, so the readers get past their first key.
_tool_delta = st.fixed_dictionaries({}, optional={"index": _json, "function": st.fixed_dictionaries(
    {}, optional={"name": _json, "arguments": _json}) | _json})
_delta = st.fixed_dictionaries({}, optional={"content": _json, "refusal": _json,
                                             "tool_calls": st.lists(_tool_delta, max_size=3) | _json})
_choice = st.fixed_dictionaries({}, optional={"message": _json, "delta": _delta | _json, "finish_reason": _json})
_openai_body = st.fixed_dictionaries({}, optional={"choices": st.lists(_choice | _json, max_size=2),
                                                   "usage": _json, "model": _json})
_block = st.fixed_dictionaries({"type": st.sampled_from(["text", "tool_use", "thinking", "x"])},
                               optional={"text": _json, "name": _json, "input": _json})
_anthropic_body = st.fixed_dictionaries({}, optional={"content": st.lists(_block | _json, max_size=3),
                                                      "usage": _json, "stop_reason": _json, "model": _json})
_event = st.fixed_dictionaries(
    {"type": st.sampled_from(["message_start", "content_block_start", "content_block_delta", "message_delta",
                              "message_stop", "ping"])},
    optional={"index": _json, "content_block": _block | _json, "delta": _json, "message": _anthropic_body | _json,
              "usage": _json})

_fast = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(model: Any, read: Any) -> None:
    try:
        with model._shape():
            result = read()
    except (ServerError, ContentFilterError):
        return
    assert result is None or isinstance(result, str)


@_fast
@given(body=_openai_body | _json)
def test_any_openai_body_is_read_or_a_server_error(body: Any) -> None:
    _outcome(OpenAIModel("m"), lambda: read_completion("openai:m", body, Usage()))


@_fast
@given(chunks=st.lists(_openai_body | _json, max_size=4))
def test_any_openai_chunks_are_read_or_a_server_error(chunks: list[Any]) -> None:
    calls: dict[int, tuple[list[str], list[str]]] = {}
    usage = Usage()

    def read() -> None:
        for chunk in chunks:
            _read_chunk(chunk, usage, calls, [])
        usage.tool_calls = streamed_calls(calls)

    _outcome(OpenAIModel("m"), read)


@_fast
@given(body=_anthropic_body | _json, forced=st.none() | st.sampled_from(["answer", "x"]))
def test_any_anthropic_body_is_read_or_a_server_error(body: Any, forced: str | None) -> None:
    _outcome(AnthropicModel("m"), lambda: read_message(body, Usage(), forced))


@_fast
@given(events=st.lists(_event | _json, max_size=6), forced=st.none() | st.just("answer"))
def test_any_anthropic_events_are_read_or_a_server_error(events: list[Any], forced: str | None) -> None:
    def read() -> str:
        acc = _Accumulator(forced)
        for event in events:
            acc.read(event)
        return read_message(acc.final(), Usage(), forced)

    _outcome(AnthropicModel("m"), read)


def test_protokit_errors_pass_through_the_shape_guard() -> None:
    """A refusal raised while reading stays a ContentFilterError, not a 'malformed response'."""
    body = {"choices": [{"message": {"content": None, "refusal": "no"}, "finish_reason": "stop"}]}
    with pytest.raises(ContentFilterError), OpenAIModel("m")._shape():
        read_completion("openai:m", body, Usage())
    with pytest.raises(ServerError, match="malformed"), OpenAIModel("m")._shape():
        read_completion("openai:m", {"choices": [7]}, Usage())
    assert issubclass(ContentFilterError, ProtokitError)
