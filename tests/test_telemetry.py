"""OpenTelemetry: every model call is a GenAI span with metrics; run() of a promoted module is their parent.

Spans and metrics go through the real OpenTelemetry SDK (in-memory exporter and reader), the calls
through the real provider SDKs against the sandbox.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import protokit as pk
import protokit.promote.runtime as _rt
from protokit.runner import RetryPolicy, telemetry
from protokit.sandbox import Sandbox

FAST = RetryPolicy(retries=2, base_delay=0.01, max_delay=0.02)
PRICE = {"input": 1.0, "output": 2.0}  # USD per 1M tokens
# Key-shaped (sk-proj- and a generated-looking body) but made up.
FAKE_KEY = "sk-proj-" + "Ab3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5oQ7s"


@pytest.fixture
def otel() -> Iterator[SimpleNamespace]:
    """protokit's spans and metrics into memory, through the SDK's providers."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry.use_providers(tracer_provider, meter_provider)
    try:
        yield SimpleNamespace(spans=spans, reader=reader, tracer=tracer_provider.get_tracer("test"))
    finally:
        telemetry.use_providers()
        tracer_provider.shutdown()
        meter_provider.shutdown()


def chat_spans(otel: SimpleNamespace) -> list[ReadableSpan]:
    return [s for s in otel.spans.get_finished_spans() if s.name.startswith("chat ")]


def points(otel: SimpleNamespace, name: str) -> list[Any]:
    data = otel.reader.get_metrics_data()
    return [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == name
            for p in m.data.data_points]


def echo(sb: Sandbox, name: str = "echo", **kw: Any) -> pk.Model:
    return pk.model(f"openai:{name}", base_url=sb.openai_base_url, api_key="sandbox-key", **kw)


def every_text(span: ReadableSpan) -> str:
    """Everything a span carries as text: name, attributes, status, events."""
    return json.dumps([span.name, dict(span.attributes or {}), span.status.description,
                       [(e.name, dict(e.attributes or {})) for e in span.events]], default=str)


# -- one call, one span ------------------------------------------------------------------------

def test_a_call_is_a_client_span_after_the_genai_conventions(otel: SimpleNamespace, sandbox: Sandbox) -> None:
    m = echo(sandbox, price=PRICE, temperature=0.2, max_tokens=50)
    with otel.tracer.start_as_current_span("caller") as parent:
        r = m.complete("hello there")
    [span] = chat_spans(otel)
    assert span.name == "chat echo" and span.kind is SpanKind.CLIENT
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    a = dict(span.attributes or {})
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "echo"
    assert a["gen_ai.response.model"] == r.provider_model
    assert a["gen_ai.usage.input_tokens"] == r.input_tokens and a["gen_ai.usage.output_tokens"] == r.output_tokens
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 50
    assert a["protokit.cost_usd"] == pytest.approx(r.cost_usd) and r.cost_usd is not None
    assert a["protokit.cached"] is False and a["protokit.attempts"] == 1
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == int(sandbox.openai_base_url.split(":")[2][:-3])
    assert "error.type" not in a and span.status.status_code is StatusCode.UNSET
    assert span.end_time is not None and span.start_time is not None
    assert (span.end_time - span.start_time) / 1e9 >= r.latency_s
    # An option that was not set is not an attribute.
    assert "gen_ai.request.top_p" not in a

    [duration] = points(otel, "gen_ai.client.operation.duration")
    assert duration.count == 1 and duration.sum == pytest.approx((span.end_time - span.start_time) / 1e9)
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "echo",
        "gen_ai.response.model": r.provider_model, "server.address": "127.0.0.1", "server.port": a["server.port"],
        "protokit.cached": False}
    tokens = {p.attributes["gen_ai.token.type"]: p for p in points(otel, "gen_ai.client.token.usage")}
    assert set(tokens) == {"input", "output"}
    assert tokens["input"].sum == r.input_tokens and tokens["output"].sum == r.output_tokens
    assert tokens["input"].attributes["gen_ai.request.model"] == "echo"


def test_a_cached_replay_is_a_span_with_no_attempt_and_no_tokens_used(otel: SimpleNamespace,
                                                                      sandbox: Sandbox) -> None:
    m = echo(sandbox)
    first = m.complete("once")
    again = m.complete("once")
    assert again.cached and not first.cached
    recorded, replayed = chat_spans(otel)
    assert (recorded.attributes or {})["protokit.cached"] is False and (recorded.attributes or {})[
        "protokit.attempts"] == 1
    assert (replayed.attributes or {})["protokit.cached"] is True and (replayed.attributes or {})[
        "protokit.attempts"] == 0
    assert (replayed.attributes or {})["gen_ai.usage.output_tokens"] == first.output_tokens
    durations = {p.attributes["protokit.cached"]: p.count for p in points(otel, "gen_ai.client.operation.duration")}
    assert durations == {False: 1, True: 1}
    # The replay consumed no tokens: only the recorded call counts.
    assert [p.count for p in points(otel, "gen_ai.client.token.usage")] == [1, 1]


def test_a_failing_call_counts_its_retries_and_says_its_error_type(otel: SimpleNamespace, sandbox: Sandbox) -> None:
    sandbox.set_faults("500=1.0", seed=0)
    m = echo(sandbox, "failing")
    with pk.call_context(retries=FAST), pytest.raises(pk.ServerError):
        m.complete("doomed")
    [span] = chat_spans(otel)
    a = dict(span.attributes or {})
    assert a["error.type"] == "ServerError" and a["protokit.attempts"] == 3
    assert span.status.status_code is StatusCode.ERROR and span.status.description
    assert "gen_ai.usage.input_tokens" not in a and "gen_ai.response.model" not in a
    [duration] = points(otel, "gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "ServerError"
    assert points(otel, "gen_ai.client.token.usage") == []


def test_a_replay_miss_is_an_error_span_that_does_not_quote_the_prompt(otel: SimpleNamespace,
                                                                      sandbox: Sandbox) -> None:
    pk.cache.configure(mode="replay")
    with pytest.raises(pk.CacheMiss):
        echo(sandbox).complete("a prompt nobody recorded")
    [span] = chat_spans(otel)
    assert (span.attributes or {})["error.type"] == "CacheMiss" and (span.attributes or {})["protokit.attempts"] == 0
    assert "nobody recorded" not in every_text(span)


def test_a_key_quoted_back_by_the_provider_never_reaches_a_span(otel: SimpleNamespace, sandbox: Sandbox) -> None:
    sandbox.set_faults("leaky401=1.0", seed=0)
    m = pk.model("openai:echo", base_url=sandbox.openai_base_url, api_key=FAKE_KEY)
    with pytest.raises(pk.AuthError):
        m.complete("hi")
    [span] = chat_spans(otel)
    assert (span.attributes or {})["error.type"] == "AuthError"
    assert FAKE_KEY not in every_text(span) and FAKE_KEY[8:] not in every_text(span)


# -- prompts and answers -------------------------------------------------------------------------

def test_prompts_and_answers_are_not_recorded_by_default(otel: SimpleNamespace, sandbox: Sandbox,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(telemetry.CAPTURE_CONTENT_ENV, raising=False)
    echo(sandbox).complete("the secret recipe is 42 grams", system="be brief")
    [span] = chat_spans(otel)
    text = every_text(span)
    assert "recipe" not in text and "be brief" not in text
    assert "gen_ai.input.messages" not in text and "gen_ai.output.messages" not in text


def test_content_capture_records_messages_when_asked(otel: SimpleNamespace, sandbox: Sandbox,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(telemetry.CAPTURE_CONTENT_ENV, "true")
    r = echo(sandbox).complete("the recipe is 42 grams", system="be brief")
    [span] = chat_spans(otel)
    a = dict(span.attributes or {})
    assert json.loads(str(a["gen_ai.input.messages"])) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "the recipe is 42 grams"}]}]
    [output] = json.loads(str(a["gen_ai.output.messages"]))
    assert output["role"] == "assistant" and output["parts"] == [{"type": "text", "content": r.text}]


@pytest.mark.filterwarnings("ignore::protokit.cache.SecretShapedAnswerWarning")
def test_a_key_in_a_prompt_never_lands_in_a_span_even_with_content_capture(otel: SimpleNamespace, sandbox: Sandbox,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(telemetry.CAPTURE_CONTENT_ENV, "true")
    r = echo(sandbox).complete(f"my key is {FAKE_KEY}, keep it safe")
    assert FAKE_KEY in r.text  # the echo model said it back: the answer carries it too
    [span] = chat_spans(otel)
    text = every_text(span)
    assert FAKE_KEY not in text and FAKE_KEY[8:] not in text
    assert "my key is sk-p" in text  # masked, the rest of the text kept


# -- runs ----------------------------------------------------------------------------------------

def test_compare_makes_one_span_per_call_under_the_callers_span(otel: SimpleNamespace, sandbox: Sandbox) -> None:
    models = [echo(sandbox), echo(sandbox, "sim-small")]
    cases = [{"q": f"question {i}"} for i in range(3)]
    with otel.tracer.start_as_current_span("notebook cell") as parent:
        cmp = pk.compare(models, "{q}", cases)
    assert len(cmp.results) == 6
    spans = chat_spans(otel)
    assert sorted(s.name for s in spans) == ["chat echo"] * 3 + ["chat sim-small"] * 3
    assert {s.parent.span_id for s in spans if s.parent} == {parent.get_span_context().span_id}
    assert len({s.context.span_id for s in spans}) == 6
    [duration_echo] = [p for p in points(otel, "gen_ai.client.operation.duration")
                       if p.attributes["gen_ai.request.model"] == "echo"]
    assert duration_echo.count == 3


def test_a_fallback_is_one_span_per_member_asked(otel: SimpleNamespace, sandbox: Sandbox) -> None:
    dead = pk.model("openai:dead", base_url="http://127.0.0.1:9/v1", api_key="k")
    with pk.call_context(retries=0):
        r = pk.fallback(dead, echo(sandbox)).complete("anyone?")
    assert r.served_by == "openai:echo"
    dead_span, alive_span = chat_spans(otel)
    assert (dead_span.attributes or {})["error.type"] == "ProviderConnectionError"
    assert (alive_span.attributes or {})["gen_ai.request.model"] == "echo"


def test_the_run_span_holds_parameters_but_no_credential(otel: SimpleNamespace) -> None:
    params = {"n_cases": 3, "prefix": "ticket", "threshold": 0.5, "labels": ["bug", "billing"],
              "weights": {"bug": 1}, "api_key": "plain-looking", "db_password": "hunter2",
              "note": f"use {FAKE_KEY}", "keys": ["a", FAKE_KEY], "missing": None}
    with _rt.span("triage.run", params):
        pass
    [span] = otel.spans.get_finished_spans()
    assert span.name == "triage.run"
    assert dict(span.attributes or {}) == {
        "protokit.parameter.n_cases": 3, "protokit.parameter.prefix": "ticket",
        "protokit.parameter.threshold": 0.5, "protokit.parameter.labels": ("bug", "billing"),
        "protokit.parameter.weights": '{"bug": 1}'}


def test_a_failing_run_is_an_error_span(otel: SimpleNamespace) -> None:
    with pytest.raises(ValueError), _rt.span("triage.run", {}):
        raise ValueError(f"bad input near {FAKE_KEY}")
    [span] = otel.spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR and (span.attributes or {})["error.type"] == "ValueError"
    assert FAKE_KEY not in every_text(span)


def test_a_promoted_modules_run_is_the_parent_of_its_calls(otel: SimpleNamespace, tmp_path: Path,
                                                           _sandbox_server: Sandbox) -> None:
    from test_promote import NO_NETWORK, load, make_notebook, recording

    from protokit.notebook import run_notebook
    from protokit.promote import promote

    nb = make_notebook(tmp_path / "triage.ipynb",
                       ('n_cases: int = 2  # how many tickets\nprefix: str = "ticket"', ["parameters"]),
                       'import protokit as pk\nm = pk.model("openai:echo")\n'
                       'answers = [m.complete(f"{prefix} {i}").text for i in range(n_cases)]\n'
                       'pk.output("answers", answers)')
    with recording(tmp_path, _sandbox_server) as mp:
        run_notebook(nb, {}, output_path=nb)
        for var in NO_NETWORK:
            mp.delenv(var, raising=False)
        result = promote(nb, "triage", tmp_path / "out")
    source = result.module_path.read_text()
    assert 'with _rt.span("triage.run", locals()), _rt.collect_outputs() as _outputs:' in source
    otel.spans.clear()
    cache = pk.cache.configure(path=tmp_path / "replay.db", mode="replay")
    cache.load(pk.cache.read_cassette(result.cassette_path))
    assert load(result.module_path).run(n_cases=2) == {"answers": ["ticket 0", "ticket 1"]}
    spans = otel.spans.get_finished_spans()
    [run] = [s for s in spans if s.name == "triage.run"]
    calls = chat_spans(otel)
    assert len(calls) == 2 and all(s.parent is not None and s.parent.span_id == run.context.span_id for s in calls)
    assert dict(run.attributes or {}) == {"protokit.parameter.n_cases": 2, "protokit.parameter.prefix": "ticket"}
    assert all((s.attributes or {})["protokit.cached"] is True for s in calls)


# -- switched on by installing it, and nothing without it -----------------------------------------------

def _python(code: str, timeout: int = 120) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_configuring_the_global_providers_is_all_it_takes(sandbox: Sandbox, tmp_path: Path) -> None:
    out = _python(f"""
        import json, protokit as pk
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        # configured after `import protokit`, as an application that imports its libraries first does
        spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        trace.set_tracer_provider(provider)
        pk.cache.configure(path={str(tmp_path / "c.db")!r}, mode="auto")
        pk.model("openai:echo", base_url={sandbox.openai_base_url!r}, api_key="k").complete("hi")
        print(json.dumps([[s.name, s.instrumentation_scope.name] for s in spans.get_finished_spans()]))
    """)
    assert out == [["chat echo", "protokit"]]


def test_import_protokit_imports_nothing_of_opentelemetry(sandbox: Sandbox, tmp_path: Path) -> None:
    # Installed (the anthropic SDK depends on the API) but not configured: a call imports nothing of it.
    out = _python(f"""
        import json, sys, protokit as pk
        after_import = [m for m in sys.modules if m.startswith("opentelemetry")]
        pk.cache.configure(path={str(tmp_path / "c.db")!r}, mode="auto")
        pk.model("openai:echo", base_url={sandbox.openai_base_url!r}, api_key="k").complete("hi")
        print(json.dumps({{"import": after_import,
                          "call": [m for m in sys.modules if m.startswith("opentelemetry")]}}))
    """)
    assert out == {"import": [], "call": []}


def test_without_opentelemetry_nothing_changes(sandbox: Sandbox, tmp_path: Path) -> None:
    out = _python(f"""
        import json, sys

        class Blocked:  # as if opentelemetry-api were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "opentelemetry":
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, Blocked())
        import protokit as pk
        import protokit.promote.runtime as _rt
        from protokit.runner import observe, telemetry
        pk.cache.configure(path={str(tmp_path / "c.db")!r}, mode="auto")
        m = pk.model("openai:echo", base_url={sandbox.openai_base_url!r}, api_key="k")
        with _rt.span("triage.run", {{"n": 1}}):
            text = m.complete("hi").text
        print(json.dumps({{"text": text, "available": telemetry.available(), "observers": len(observe._process),
                          "modules": [m for m in sys.modules if m.startswith("opentelemetry")]}}))
    """)
    assert out == {"text": "hi", "available": False, "observers": 0, "modules": []}


def test_captured_messages_keep_images_and_tool_calls_as_parts_without_their_data() -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                     {"type": "image", "source": "photos/cat.png", "sha256": "ab12"}]},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "name": "lookup", "arguments": {"token": FAKE_KEY, "q": "cat"}}]},
        {"role": "tool", "content": "a cat", "tool_call_id": "call_1", "name": "lookup"},
    ]
    parts = [telemetry._message(m) for m in messages]
    assert parts[0] == {"role": "user", "parts": [{"type": "text", "content": "what is this?"}, {"type": "image"}]}
    [call] = parts[1]["parts"]
    assert call["type"] == "tool_call" and call["name"] == "lookup" and FAKE_KEY not in call["arguments"]
    assert parts[2] == {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1",
                                                   "response": "a cat"}]}
    assert "cat.png" not in json.dumps(parts)
