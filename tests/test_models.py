"""Model adapters through the real SDKs against the sandbox, plus the callable adapter."""

from __future__ import annotations

import asyncio
import warnings

import pytest

import protokit as pk
from protokit.models import prices


def openai_model(sb, name="echo", **kw):
    return pk.model(f"openai:{name}", base_url=sb.openai_base_url, api_key="sandbox-key", **kw)


def anthropic_model(sb, name="echo", **kw):
    return pk.model(f"anthropic:{name}", base_url=sb.anthropic_base_url, api_key="sandbox-key", **kw)


@pytest.mark.parametrize("make", [openai_model, anthropic_model], ids=["openai", "anthropic"])
def test_complete_json_reports_text_usage_and_timing(sandbox, make):
    m = make(sandbox)
    r = m.complete("Say hi to the tests")
    assert r.text == "Say hi to the tests"
    assert r.model == m.id and r.model.endswith(":echo")
    assert r.input_tokens and r.input_tokens > 0
    assert r.output_tokens and r.output_tokens > 0
    assert r.latency_s > 0 and r.ttft_s is None
    assert r.cached is False
    assert r.raw is not None


@pytest.mark.parametrize("make", [openai_model, anthropic_model], ids=["openai", "anthropic"])
def test_stream_yields_chunks_that_join_to_the_json_answer(sandbox, make):
    m = make(sandbox, "hashy")
    expected = m.complete("tell me a story about caches").text
    pk.cache.configure(mode="off")
    s = m.stream("tell me a story about caches")
    chunks = list(s)
    assert len(chunks) >= 1
    assert "".join(chunks) == expected
    assert s.response is not None and s.response.ttft_s is not None
    assert s.response.output_tokens and s.response.output_tokens > 0


@pytest.mark.parametrize("make", [openai_model, anthropic_model], ids=["openai", "anthropic"])
def test_async_and_sync_parity(sandbox, make):
    m = make(sandbox, "parity")
    sync = m.complete("same question", temperature=0)
    pk.cache.configure(mode="off")

    async def go():
        return await m.acomplete("same question", temperature=0)

    asy = asyncio.run(go())
    assert (asy.text, asy.input_tokens, asy.output_tokens) == (sync.text, sync.input_tokens, sync.output_tokens)


def test_astream(sandbox):
    m = anthropic_model(sandbox)
    pk.cache.configure(mode="off")

    async def go():
        s = m.astream("streamed back")
        parts = [c async for c in s]
        return parts, s.response

    parts, response = asyncio.run(go())
    assert "".join(parts) == "streamed back"
    assert response is not None and response.text == "streamed back"


def test_messages_with_system_prompt_reach_both_providers(sandbox):
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "last words"}]
    assert openai_model(sandbox).complete(msgs).text == "last words"
    assert anthropic_model(sandbox).complete("last words", system="be brief").text == "last words"


def test_sync_api_works_inside_a_running_event_loop(sandbox):
    m = openai_model(sandbox)

    async def cell():  # what a Jupyter cell looks like: code running inside the kernel's loop
        return m.complete("inside a loop").text

    assert asyncio.run(cell()) == "inside a loop"


def test_unknown_option_is_refused_up_front(sandbox):
    with pytest.raises(pk.ConfigError, match=r"unknown option 'temprature'.*known options: max_tokens"):
        openai_model(sandbox, temprature=0)
    m = anthropic_model(sandbox)
    with pytest.raises(pk.ConfigError, match="unknown option 'seed' for anthropic:echo"):
        m.complete("x", seed=3)
    with pytest.raises(pk.ConfigError, match="temperature=5"):
        m.complete("x", temperature=5)
    assert sandbox.stats()["requests"] == 0


def test_unknown_provider_lists_the_known_ones():
    with pytest.raises(pk.ConfigError, match="unknown provider 'opneai'; known providers: anthropic, openai"):
        pk.model("opneai:gpt-4.1")
    with pytest.raises(pk.ConfigError, match="provider:name"):
        pk.model("gpt-4.1")


@pytest.mark.parametrize(
    ("spec", "env"),
    [("openai:gpt-4.1-mini", "OPENAI_API_KEY"), ("anthropic:claude-haiku-4-5", "ANTHROPIC_API_KEY")],
)
def test_missing_key_names_the_env_var(spec, env):
    m = pk.model(spec)  # constructing needs no key: replaying a notebook in CI has none
    with pytest.raises(pk.MissingKeyError, match=env):
        m.complete("hello")


def test_openai_compatible_server_needs_no_key(sandbox):
    m = pk.model("openai:llama3.2", base_url=sandbox.openai_base_url)
    assert m.complete("local").text


def test_env_base_url_and_key_are_honoured(sandbox, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", sandbox.openai_base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sandbox-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", sandbox.anthropic_base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sandbox-key")
    assert pk.model("openai:echo").complete("from env").text == "from env"
    assert pk.model("anthropic:echo").complete("from env").text == "from env"


def test_auth_error_is_classified_with_the_fix(sandbox):
    sandbox.set_faults("401=1.0", seed=1)
    with pytest.raises(pk.AuthError, match="check OPENAI_API_KEY") as info:
        openai_model(sandbox).complete("x")
    assert info.value.status == 401 and info.value.kind == "auth"


def test_callable_sync_and_async():
    def shout(prompt: str) -> str:
        return prompt.upper()

    async def whisper(prompt: str, system: str | None = None) -> str:
        return f"{system}:{prompt.lower()}"

    a = pk.model(shout, name="baseline")
    assert a.id == "callable:baseline"
    r = a.complete("hey")
    assert r.text == "HEY" and r.cost_usd == 0.0
    b = pk.model(whisper)
    assert b.complete("HEY", system="s").text == "s:hey"


def test_callable_errors_are_provider_errors_and_bad_returns_are_config_errors():
    def boom(prompt):
        raise RuntimeError("kaput")

    with pytest.raises(pk.ProviderError, match="RuntimeError: kaput"):
        pk.model(boom).complete("x")
    with pytest.raises(pk.ConfigError, match="must return str"):
        pk.model(lambda p: 3, name="three").complete("x")


def test_cost_from_price_table_and_unknown_price_warns_once(sandbox):
    m = openai_model(sandbox, "gpt-4.1-mini")
    r = m.complete("price me please")
    price = prices.get_price("openai:gpt-4.1-mini")
    assert price is not None
    expected = (r.input_tokens * price["input"] + r.output_tokens * price["output"]) / 1e6
    assert r.cost_usd == pytest.approx(expected)

    unknown = openai_model(sandbox, "never-priced-model")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r1 = unknown.complete("one")
        r2 = unknown.complete("two")
    assert r1.cost_usd is None and r2.cost_usd is None
    assert sum("no price known for openai:never-priced-model" in str(w.message) for w in caught) == 1


def test_price_override_and_cached_input_pricing():
    pk.set_price("openai:custom", input=1.0, output=2.0, cached_input=0.5, reasoning=4.0)
    # 1000 input of which 400 cached, 500 output of which 100 reasoning
    got = prices.cost("openai:custom", 1000, 500, 400, 100)
    assert got == pytest.approx((600 * 1.0 + 400 * 0.5 + 400 * 2.0 + 100 * 4.0) / 1e6)
    assert prices.price_table_date() >= "2026-01-01"


def test_response_format_and_stop_pass_through_openai(sandbox):
    m = openai_model(sandbox, stop=["zzz"], response_format="json")
    assert m.defaults == {"stop": ["zzz"], "response_format": "json"}
    text = m.complete("stop here zzz and not this").text
    assert text.startswith("stop here") and "zzz" not in text


def test_registry_accepts_a_third_party_provider():
    from protokit.models import Model, register

    class Upper(Model):
        provider = "upper"
        cacheable = False

        async def execute(self, request, usage):
            yield request.messages[-1]["content"].upper()

    register("upper", Upper)
    assert "upper" in pk.providers()
    assert pk.model("upper:any").complete("plug in").text == "PLUG IN"


def test_fallback_uses_the_next_provider_when_one_fails(sandbox):
    down = pk.model("openai:primary", base_url="http://127.0.0.1:9/v1", api_key="k")  # nothing listens there
    backup = anthropic_model(sandbox)
    m = pk.fallback(down, backup)
    with pk.call_context(retries=1):
        r = m.complete("answer anyway")
    assert r.text == "answer anyway" and r.served_by == "anthropic:echo"
    # Replay takes the same path: the primary has no recording, the backup answers from the cache.
    pk.cache.configure(mode="replay")
    assert m.complete("answer anyway").cached


def test_fallback_raises_the_last_error_when_every_model_fails(sandbox):
    sandbox.set_faults("400=1.0", seed=1)
    m = pk.fallback(openai_model(sandbox), anthropic_model(sandbox))
    with pytest.raises(pk.BadRequestError, match=r"every model of .* failed"):
        m.complete("nobody home")
    with pytest.raises(pk.ConfigError, match="at least two"):
        pk.fallback("openai:x")
