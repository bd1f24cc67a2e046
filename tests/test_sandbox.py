"""The provider sandbox, exercised through the official openai and anthropic SDKs."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from protokit.errors import SandboxError
from protokit.sandbox import Sandbox
from protokit.sandbox.config import parse_latency
from protokit.sandbox.faults import FaultPlan

KEY = "sandbox-key"
USER = [{"role": "user", "content": "Hello sandbox, how are you"}]


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(port=0) as server:
        yield server


def oai(sb: Sandbox, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=sb.openai_base_url, api_key=KEY, max_retries=0, **kw)


def ant(sb: Sandbox, **kw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sb.anthropic_base_url, api_key=KEY, max_retries=0, **kw)


def openai_text(sb: Sandbox, model: str, messages: list, **kw) -> str:
    r = oai(sb).chat.completions.create(model=model, messages=messages, **kw)
    return r.choices[0].message.content or ""


def anthropic_text(sb: Sandbox, model: str, messages: list, **kw) -> str:
    m = ant(sb).messages.create(model=model, messages=messages, max_tokens=kw.pop("max_tokens", 256), **kw)
    return m.content[0].text  # type: ignore[union-attr]


# -- replies, JSON and streaming ------------------------------------------------------------------


def test_openai_json_and_stream_agree_and_report_usage(sb):
    client = oai(sb)
    r = client.chat.completions.create(model="echo", messages=USER)
    assert r.choices[0].message.content == "Hello sandbox, how are you"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage and r.usage.prompt_tokens > 0 and r.usage.completion_tokens == 5
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

    for model in ("echo", "gpt-sim"):
        full = client.chat.completions.create(model=model, messages=USER)
        chunks = list(
            client.chat.completions.create(
                model=model, messages=USER, stream=True, stream_options={"include_usage": True}
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == full.choices[0].message.content and len(chunks) > 3
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert chunks[-1].usage is not None and chunks[-1].usage == full.usage
    plain = list(client.chat.completions.create(model="echo", messages=USER, stream=True))
    assert all(c.usage is None for c in plain)


def test_anthropic_json_and_stream_agree_and_report_usage(sb):
    client = ant(sb)
    m = client.messages.create(model="echo", max_tokens=100, messages=USER)
    assert m.content[0].text == "Hello sandbox, how are you"  # type: ignore[union-attr]
    assert m.stop_reason == "end_turn" and m.role == "assistant" and m.model == "echo"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens == 5

    for model in ("echo", "claude-sim"):
        full = client.messages.create(model=model, max_tokens=100, messages=USER)
        events = list(client.messages.create(model=model, max_tokens=100, messages=USER, stream=True))
        kinds = [e.type for e in events]
        assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
        assert events[0].message.usage.input_tokens == full.usage.input_tokens  # type: ignore[union-attr]
        delta = next(e for e in events if e.type == "message_delta")
        assert delta.usage.output_tokens == full.usage.output_tokens  # type: ignore[union-attr]
        text = "".join(e.delta.text for e in events if e.type == "content_block_delta")  # type: ignore[union-attr]
        assert text == full.content[0].text  # type: ignore[union-attr]
        with client.messages.stream(model=model, max_tokens=100, messages=USER) as stream:
            assert "".join(stream.text_stream) == text
            final = stream.get_final_message()
        assert final.usage == full.usage and final.stop_reason == "end_turn"


def test_async_clients_match_sync(sb):
    async def go() -> tuple[str, str, str, str]:
        oa = openai.AsyncOpenAI(base_url=sb.openai_base_url, api_key=KEY, max_retries=0)
        an = anthropic.AsyncAnthropic(base_url=sb.anthropic_base_url, api_key=KEY, max_retries=0)
        r = await oa.chat.completions.create(model="gpt-sim", messages=USER)
        s = await oa.chat.completions.create(model="gpt-sim", messages=USER, stream=True)
        streamed = "".join([c.choices[0].delta.content or "" async for c in s if c.choices])
        m = await an.messages.create(model="claude-sim", max_tokens=100, messages=USER)
        async with an.messages.stream(model="claude-sim", max_tokens=100, messages=USER) as st:
            a_streamed = "".join([t async for t in st.text_stream])
        await oa.close()
        await an.close()
        return r.choices[0].message.content or "", streamed, m.content[0].text, a_streamed  # type: ignore[union-attr]

    o_json, o_stream, a_json, a_stream = asyncio.run(go())
    assert o_json == o_stream == openai_text(sb, "gpt-sim", USER)
    assert a_json == a_stream == anthropic_text(sb, "claude-sim", USER)


def test_replies_are_deterministic_per_request(sb):
    one = openai_text(sb, "gpt-sim", USER, temperature=0.9, seed=3)
    assert one == openai_text(sb, "gpt-sim", USER, temperature=0.9, seed=3)
    assert one == openai_text(sb, "gpt-sim", USER)  # sampling options do not change the reply
    assert one != openai_text(sb, "gpt-other", USER)
    assert one != openai_text(sb, "gpt-sim", [{"role": "user", "content": "something else"}])
    assert re.fullmatch(r"[A-Z][a-z]+( [a-z]+)*\.", one)
    # The reply depends on the neutral request, not the wire format.
    assert anthropic_text(sb, "gpt-sim", USER) == one
    r = oai(sb).chat.completions.create(model="gpt-sim", messages=USER, n=3)
    assert [c.message.content for c in r.choices] == [one] * 3


def test_system_prompts_and_content_blocks(sb):
    blocks = [{"role": "user", "content": [{"type": "text", "text": "Hello sandbox, how are you"}]}]
    assert openai_text(sb, "echo", blocks) == "Hello sandbox, how are you"
    assert anthropic_text(sb, "echo", blocks) == "Hello sandbox, how are you"
    two = [{"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}]
    assert openai_text(sb, "echo", two) == anthropic_text(sb, "echo", two) == "one\ntwo"
    # The last *user* message is echoed, whatever follows it.
    convo = [*USER, {"role": "assistant", "content": "fine"}, {"role": "user", "content": "last words"}]
    assert openai_text(sb, "echo", [{"role": "system", "content": "be brief"}, *convo]) == "last words"

    plain = openai_text(sb, "sim", USER)
    with_system = openai_text(sb, "sim", [{"role": "system", "content": "be brief"}, *USER])
    assert plain != with_system
    assert openai_text(sb, "sim", blocks) == plain
    assert anthropic_text(sb, "sim", USER, system="be brief") == with_system
    system_blocks = [{"type": "text", "text": "be brief"}]
    assert anthropic_text(sb, "sim", blocks, system=system_blocks) == with_system


def test_max_tokens_and_stop_sequences(sb):
    long = [{"role": "user", "content": "alpha beta  gamma delta STOP epsilon"}]
    r = oai(sb).chat.completions.create(model="echo", messages=long, max_tokens=3)
    assert r.choices[0].message.content == "alpha beta  gamma"
    assert r.choices[0].finish_reason == "length" and r.usage and r.usage.completion_tokens == 3
    m = ant(sb).messages.create(model="echo", messages=long, max_tokens=2)
    assert m.content[0].text == "alpha beta" and m.stop_reason == "max_tokens"  # type: ignore[union-attr]

    r = oai(sb).chat.completions.create(model="echo", messages=long, stop=["STOP", "zzz"])
    assert r.choices[0].message.content == "alpha beta  gamma delta " and r.choices[0].finish_reason == "stop"
    m = ant(sb).messages.create(model="echo", messages=long, max_tokens=50, stop_sequences=["delta"])
    assert m.content[0].text == "alpha beta  gamma " and m.stop_reason == "stop_sequence"  # type: ignore[union-attr]
    assert m.stop_sequence == "delta"
    events = list(ant(sb).messages.create(model="echo", messages=long, max_tokens=2, stream=True))
    assert next(e for e in events if e.type == "message_delta").delta.stop_reason == "max_tokens"  # type: ignore[union-attr]
    chunks = list(oai(sb).chat.completions.create(model="echo", messages=long, max_tokens=2, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "alpha beta"
    assert chunks[-1].choices[0].finish_reason == "length"


def test_bad_request_bodies_get_provider_shaped_400(sb):
    with pytest.raises(openai.BadRequestError, match="messages"):
        oai(sb).chat.completions.create(model="echo", messages=[])
    with pytest.raises(anthropic.BadRequestError) as info:
        ant(sb).messages.create(model="echo", max_tokens=5, messages=[{"role": "robot", "content": "x"}])
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


def test_models_list_in_both_shapes(tmp_path):
    script = tmp_path / "s.yaml"
    script.write_text("models:\n  sim-a: {rules: [{reply: a}]}\n")
    with Sandbox(script=script) as box:
        assert [m.id for m in oai(box).models.list()] == ["echo", "sim-a"]
        assert [m.id for m in ant(box).models.list()] == ["echo", "sim-a"]


# -- scripts ----------------------------------------------------------------------------------------

SCRIPT = """
models:
  sim-large:
    rules:
      - match: "(?i)refund|charge"
        reply: billing
      - match: "(?i)order (?P<num>\\\\d+)"
        reply: "order {num} ({0})"
      - match: "(?i)password"
        system: "strict"
        reply: security
      - match: "."
        reply: other
  sim-small:
    latency: 0.05
    rules:
      - match: "(?i)refund"
        reply: billing
      - match: "(\\\\w+)"
        reply: "guess: {1}"
"""


def test_script_rules_simulate_models_of_different_quality(tmp_path):
    path = tmp_path / "script.yaml"
    path.write_text(SCRIPT)

    def ask(box: Sandbox, model: str, text: str, system: str | None = None) -> str:
        messages = [{"role": "user", "content": text}]
        if system is not None:
            messages.insert(0, {"role": "system", "content": system})
        return openai_text(box, model, messages)

    with Sandbox(script=path) as box:
        assert ask(box, "sim-large", "I was charged twice") == "billing"
        assert ask(box, "sim-small", "I was charged twice") == "guess: I"
        assert ask(box, "sim-large", "Where is Order 42?") == "order 42 (Order 42)"
        assert ask(box, "sim-large", "reset my password", system="be strict") == "security"
        assert ask(box, "sim-large", "reset my password", system="be lax") == "other"
        assert anthropic_text(box, "sim-small", [{"role": "user", "content": "Refund please"}]) == "billing"
        # unmatched rule or unscripted model: the default behaviour
        assert ask(box, "echo", "Refund please") == "Refund please"
        assert ask(box, "sim-large", "") != "other"
        t0 = time.perf_counter()
        ask(box, "sim-small", "refund")
        assert time.perf_counter() - t0 >= 0.05


def test_json_script_is_accepted(tmp_path):
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"models": {"j": {"rules": [{"match": "x", "reply": '{"label": "x"}'}]}}}))
    with Sandbox(script=path) as box:
        assert json.loads(openai_text(box, "j", [{"role": "user", "content": "x"}])) == {"label": "x"}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("models: [", "not valid YAML or JSON"),
        ("- just a list", "expected a mapping with a 'models' mapping"),
        (
            "models:\n  m:\n    rules:\n      - match: '('\n        reply: x\n",
            "models.m.rules[0].match: bad regex",
        ),
        ("models:\n  m:\n    rules:\n      - match: 'a'\n", "models.m.rules[0]: 'reply' must be a string"),
        ("models:\n  m:\n    rules:\n      - replay: x\n", "unknown key 'replay'"),
        ("models:\n  m:\n    latency: fast\n", "models.m.latency"),
        ("models:\n  m:\n    rules:\n      - {match: 'a', reply: '{2}'}\n", "no such group"),
    ],
)
def test_bad_script_is_one_clear_line(tmp_path, content, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(SandboxError) as info:
        Sandbox(script=path)
    message = str(info.value)
    assert str(path) in message and problem in message and "\n" not in message


def test_missing_script_file():
    with pytest.raises(SandboxError, match=r"script /no/such/file\.yaml: file not found"):
        Sandbox(script="/no/such/file.yaml")


# -- latency ------------------------------------------------------------------------------------------


def test_latency_delays_replies_without_blocking_others():
    with Sandbox(latency=0.2) as box:
        t0 = time.perf_counter()
        assert openai_text(box, "echo", USER)
        assert time.perf_counter() - t0 >= 0.2

        async def many() -> list[str]:
            client = openai.AsyncOpenAI(base_url=box.openai_base_url, api_key=KEY, max_retries=0)
            results = await asyncio.gather(
                *(
                    client.chat.completions.create(model="echo", messages=[{"role": "user", "content": f"n{i}"}])
                    for i in range(20)
                )
            )
            await client.close()
            return [r.choices[0].message.content or "" for r in results]

        t0 = time.perf_counter()
        assert asyncio.run(many()) == [f"n{i}" for i in range(20)]
        assert time.perf_counter() - t0 < 1.5  # serial would take 4 s


def test_latency_spec_parsing():
    assert parse_latency(0.2) == (0.2, 0.2)
    assert parse_latency("0.1:0.3") == (0.1, 0.3)
    for bad in ("x", "0.3:0.1", "-1", "1:"):
        with pytest.raises(SandboxError, match="latency"):
            parse_latency(bad)


def test_latency_range_is_seeded():
    with Sandbox(latency="0.01:0.05", seed=3) as box:
        t0 = time.perf_counter()
        openai_text(box, "echo", USER)
        assert 0.01 <= time.perf_counter() - t0 < 1


# -- faults -------------------------------------------------------------------------------------------


def test_rate_limit_fault_carries_retry_headers_in_both_sdks():
    with Sandbox(faults="429=1", retry_after_ms=25) as box:
        with pytest.raises(openai.RateLimitError) as oe:
            openai_text(box, "echo", USER)
        assert oe.value.response.headers["retry-after"] == "1"
        assert oe.value.response.headers["retry-after-ms"] == "25"
        assert oe.value.body["type"] == "rate_limit_error"  # type: ignore[index]
        with pytest.raises(anthropic.RateLimitError) as ae:
            anthropic_text(box, "echo", USER)
        assert ae.value.response.headers["retry-after-ms"] == "25"
        assert ae.value.body == {  # type: ignore[comparison-overlap]
            "type": "error",
            "error": {
                "type": "rate_limit_error",
                "message": "sandbox fault: rate limit reached, retry after a moment",
            },
        }

    # The SDKs' own retries wait retry-after-ms (not Retry-After's full second) and get through.
    with Sandbox(faults="429=0.5", seed=1, retry_after_ms=10) as box:
        patient = openai.OpenAI(base_url=box.openai_base_url, api_key=KEY, max_retries=8)
        t0 = time.perf_counter()
        for i in range(6):
            patient.chat.completions.create(model="echo", messages=[{"role": "user", "content": f"r{i}"}])
        assert box.stats()["by_status"]["429"] >= 2
        assert time.perf_counter() - t0 < box.stats()["by_status"]["429"] * 0.5


@pytest.mark.parametrize(
    ("spec", "openai_error", "anthropic_error"),
    [
        ("500=1", openai.InternalServerError, anthropic.InternalServerError),
        ("529=1", openai.InternalServerError, anthropic.OverloadedError),
        ("401=1", openai.AuthenticationError, anthropic.AuthenticationError),
        ("400=1", openai.BadRequestError, anthropic.BadRequestError),
        ("reset=1", openai.APIConnectionError, anthropic.APIConnectionError),
        ("malformed=1", json.JSONDecodeError, json.JSONDecodeError),
    ],
)
def test_each_fault_surfaces_as_the_sdk_exception(sb, spec, openai_error, anthropic_error):
    sb.set_faults(spec, seed=0)
    try:
        for stream in (False, True):
            with pytest.raises(openai_error):
                list(oai(sb).chat.completions.create(model="echo", messages=USER, stream=stream))  # type: ignore[call-overload]
            with pytest.raises(anthropic_error):
                result = ant(sb).messages.create(model="echo", max_tokens=5, messages=USER, stream=stream)
                list(result) if stream else None  # type: ignore[call-overload]
    finally:
        sb.set_faults(None)
    assert openai_text(sb, "echo", USER)


def test_timeout_fault_makes_the_client_time_out():
    with Sandbox(faults="timeout=1", timeout_hold=2) as box:
        t0 = time.perf_counter()
        with pytest.raises(openai.APITimeoutError):
            oai(box, timeout=0.3).chat.completions.create(model="echo", messages=USER)
        with pytest.raises(anthropic.APITimeoutError):
            ant(box, timeout=0.3).messages.create(model="echo", max_tokens=5, messages=USER)
        assert time.perf_counter() - t0 < 1.5
        # A patient client gets the reply after the hold.
        with Sandbox(faults="timeout=1", timeout_hold=0.1) as quick:
            assert openai_text(quick, "echo", USER) == "Hello sandbox, how are you"
        assert box.stats()["by_status"] == {"timeout": 2}


def outcomes(box: Sandbox, n: int) -> list[str]:
    client = oai(box)
    result = []
    for i in range(n):
        try:
            client.chat.completions.create(model="echo", messages=[{"role": "user", "content": f"q{i}"}])
            result.append("ok")
        except openai.APIStatusError as exc:
            result.append(str(exc.status_code))
    return result


def test_faults_are_deterministic_for_a_seed():
    spec = "429=0.3,500=0.2"
    with (
        Sandbox(faults=spec, seed=7) as a,
        Sandbox(faults=spec, seed=7) as b,
        Sandbox(faults=spec, seed=8) as c,
    ):
        first = outcomes(a, 40)
        assert first == outcomes(b, 40)
        assert first != outcomes(c, 40)
        assert {"ok", "429", "500"} == set(first)
        a.set_faults(spec, seed=7)  # restarts the draw
        assert outcomes(a, 40) == first
        by_status = a.stats()["by_status"]
        assert by_status["429"] == 2 * first.count("429") and by_status["200"] == 2 * first.count("ok")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("404=0.1", "one of 400, 401, 429, 500, 529, timeout, reset, malformed"),
        ("429", "NAME=PROBABILITY"),
        ("429=2", "bad probability"),
        ("429=x", "bad probability"),
        ("429=0.6,500=0.6", "add up to"),
        ("429=0.1,429=0.2", "twice"),
    ],
)
def test_bad_fault_specs(sb, spec, problem):
    with pytest.raises(SandboxError, match=problem):
        Sandbox(faults=spec)
    with pytest.raises(SandboxError, match=problem):
        sb.set_faults(spec)


def test_fault_plan_draws_in_proportion():
    plan = FaultPlan("429=0.25,reset=0.25", seed=1)
    draws = [plan.draw() for _ in range(4000)]
    assert 800 < draws.count("429") < 1200 and 800 < draws.count("reset") < 1200
    assert FaultPlan(None).draw() is None


# -- stats, ports -----------------------------------------------------------------------------------


def test_stats_count_requests_and_reset():
    def get(box: Sandbox, path: str, method: str = "GET") -> dict:
        with urllib.request.urlopen(urllib.request.Request(box.url + path, method=method)) as r:
            return json.loads(r.read())

    with Sandbox(faults="500=0.5", seed=2) as box:
        results = outcomes(box, 10)
        stats = box.stats()
        assert stats["requests"] == 10 == sum(stats["by_status"].values())
        assert stats["by_status"].get("500", 0) == results.count("500") > 0
        assert stats["by_model"] == {"echo": 10} and stats["by_api"] == {"openai": 10}
        assert get(box, "/_sandbox/stats") == stats
        box.set_faults(None)
        ant(box).messages.create(model="claude-sim", max_tokens=5, messages=USER)
        assert box.stats()["by_api"] == {"openai": 10, "anthropic": 1}
        assert get(box, "/_sandbox/reset", "POST")["requests"] == 0
        assert box.stats() == {"requests": 0, "by_status": {}, "by_model": {}, "by_api": {}, "batches": {}}
        openai_text(box, "x", USER)
        box.reset_stats()
        assert box.stats()["requests"] == 0


def test_port_in_use_is_a_one_line_sandbox_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SandboxError) as info:
            Sandbox(port=port).start()
    assert str(info.value) == f"port {port} is in use on 127.0.0.1; pick another with --port or use --port 0"


def test_start_stop_and_attributes():
    box = Sandbox()
    box.start()
    try:
        assert box.running and box.port > 0
        assert box.url == f"http://127.0.0.1:{box.port}"
        assert box.openai_base_url == box.url + "/v1" and box.anthropic_base_url == box.url
        assert repr(box) == f"<Sandbox {box.url} running>"
    finally:
        box.stop()
        box.stop()
    assert not box.running
    with pytest.raises(openai.APIConnectionError):
        openai_text(box, "echo", USER)


# -- the CLI ------------------------------------------------------------------------------------------

PROTOKIT = str(Path(sys.executable).with_name("protokit"))


def test_cli_serves_until_terminated():
    proc = subprocess.Popen(
        [PROTOKIT, "sandbox", "--port", "0", "--faults", "429=0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        found = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))\n", first)
        assert found, first
        url = found.group(1)
        client = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
        reply = client.chat.completions.create(model="echo", messages=USER)
        assert reply.choices[0].message.content == "Hello sandbox, how are you"
        assert f"OPENAI_BASE_URL={url}/v1" in proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_cli_busy_port_is_one_error_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([PROTOKIT, "sandbox", "--port", str(port)], capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert done.stderr == f"error: port {port} is in use on 127.0.0.1; pick another with --port or use --port 0\n"
    assert done.stdout == ""


def test_sandbox_imports_nothing_of_protokit_but_errors():
    root = Path(__file__).resolve().parents[1] / "protokit"

    def imported_by(files):
        found = (re.match(r"\s*(?:from|import) (protokit[\w.]*)", line)
                 for file in files for line in file.read_text().splitlines())
        return {m.group(1) for m in found if m}

    files = list((root / "sandbox").glob("*.py"))
    own = {f"protokit.sandbox.{f.stem}" for f in files}
    imported = imported_by(files)
    assert imported - {"protokit.errors"} <= own
    assert "protokit.errors" in imported
    # Its command line adds only the provider variables' names (the models' table), for its hint lines.
    assert imported_by([root / "cli" / "sandbox.py"]) - {"protokit.errors", "protokit.models.env"} <= own


def test_public_names_are_exported():
    import protokit.sandbox as pkg

    assert set(pkg.__all__) == {"DEFAULT_PORT", "KNOWN_FAULTS", "Sandbox", "SandboxConfig"}
    assert all(getattr(pkg, name) is not None for name in pkg.__all__)
    assert pkg.SandboxConfig.build(latency="0.1:0.2", faults="429=0.5").latency == (0.1, 0.2)
