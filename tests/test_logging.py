"""``logging.getLogger("protokit")``: retries, fallbacks, budget stops and cache misses, one line each, no secrets."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

import protokit as pk
from protokit.runner import RetryPolicy
from protokit.sandbox import Sandbox

FAST = RetryPolicy(retries=2, base_delay=0.01, max_delay=0.02)
FAKE_KEY = "sk-proj-" + "Ab3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5oQ7s"
EXPENSIVE = {"input": 10_000.0, "output": 10_000.0}


def lines(caplog: pytest.LogCaptureFixture, prefix: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("protokit") and r.getMessage().startswith(prefix)]


def echo(sb: Sandbox, name: str = "echo", **kw: object) -> pk.Model:
    return pk.model(f"openai:{name}", base_url=sb.openai_base_url, api_key="sandbox-key", **kw)


def test_each_retry_is_one_line_with_model_kind_attempt_and_delay(sandbox: Sandbox,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    sandbox.set_faults("500=1.0", seed=0)
    caplog.set_level(logging.INFO, logger="protokit")
    with pk.call_context(retries=FAST), pytest.raises(pk.ServerError):
        echo(sandbox, "flaky").complete("hi")
    retries = lines(caplog, "retry:")
    assert [r.levelno for r in retries] == [logging.INFO, logging.INFO]
    first, second = (r.getMessage() for r in retries)
    assert first.startswith("retry: openai:flaky failed with server (500) on attempt 1 of 3; trying again in ")
    assert "on attempt 2 of 3" in second and second.endswith("s") and "\n" not in second


def test_a_key_quoted_by_the_provider_never_reaches_the_log(sandbox: Sandbox,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    sandbox.set_faults("leaky401=1.0", seed=0)
    caplog.set_level(logging.DEBUG, logger="protokit")
    m = pk.model("openai:echo", base_url=sandbox.openai_base_url, api_key=FAKE_KEY)
    with pytest.raises(pk.AuthError):
        pk.fallback(m, pk.model("openai:other", base_url=sandbox.openai_base_url, api_key=FAKE_KEY)).complete("x")
    assert lines(caplog, "fallback:")
    assert all(FAKE_KEY[8:] not in r.getMessage() for r in caplog.records)


def test_a_fallback_says_which_member_failed_and_which_is_next(sandbox: Sandbox,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="protokit")
    dead = pk.model("openai:dead", base_url="http://127.0.0.1:9/v1", api_key="k")
    also_dead = pk.model("anthropic:gone", base_url="http://127.0.0.1:9", api_key="k")
    with pk.call_context(retries=0):
        assert pk.fallback(dead, echo(sandbox)).complete("anyone?").served_by == "openai:echo"
        with pytest.raises(pk.ProviderConnectionError):
            pk.fallback(dead, also_dead).complete("anyone?")
    messages = [(r.levelno, r.getMessage()) for r in lines(caplog, "fallback:")]
    assert messages == [
        (logging.WARNING, "fallback: openai:dead failed with connection; trying openai:echo next "
                          "(fallback:openai:dead|openai:echo)"),
        (logging.WARNING, "fallback: openai:dead failed with connection; trying anthropic:gone next "
                          "(fallback:openai:dead|anthropic:gone)"),
        (logging.WARNING, "fallback: anthropic:gone failed with connection; every member of "
                          "fallback:openai:dead|anthropic:gone failed"),
    ]


def test_budget_stops_warn_once_then_debug(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="protokit")
    m = echo(sandbox, price=EXPENSIVE)
    res = pk.compare([m], "{q}", [{"q": f"ticket {i}"} for i in range(3)], budget_usd=0.5).results
    assert (res["error"] == "not_run_budget").all()
    stops = lines(caplog, "budget stop:")
    assert [r.levelno for r in stops] == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    assert "not run: openai:echo would need ~$" in stops[0].getMessage()


def test_cache_misses_warn_in_replay_mode_and_are_debug_lines_in_auto_mode(
        sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="protokit")
    m = echo(sandbox)
    m.complete("first time, with a private detail")
    m.complete("first time, with a private detail")  # a hit: no line
    pk.cache.configure(mode="replay")
    with pytest.raises(pk.CacheMiss):
        m.complete("never recorded, private too")
    misses = lines(caplog, "cache miss:")
    assert [r.levelno for r in misses] == [logging.DEBUG, logging.WARNING]
    auto, replay = (r.getMessage() for r in misses)
    assert auto.startswith("cache miss: openai:echo (sample 0, key ") and auto.endswith(") is asked and recorded")
    assert replay.startswith("cache miss: no recorded answer for openai:echo (sample 0, key ")
    assert all("private" not in r.getMessage() for r in caplog.records)  # prompts stay out of the log


def test_protokit_configures_no_handler_and_prints_nothing_by_default(tmp_path) -> None:
    code = ("import logging, protokit as pk\n"
            f"pk.cache.configure(path={str(tmp_path / 'c.db')!r}, mode='replay')\n"
            "try:\n    pk.model('openai:x').complete('hi')\nexcept pk.CacheMiss:\n    pass\n"
            "print([type(h).__name__ for h in logging.getLogger('protokit').handlers], logging.root.handlers)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['NullHandler'] []"
    assert done.stderr == ""  # the replay-mode warning goes nowhere until the application configures logging
