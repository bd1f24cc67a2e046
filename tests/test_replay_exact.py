"""Replay is exact: whatever a model answered comes back byte for byte, and is never rewritten.

- a property test (hypothesis): arbitrary text (unicode, NULs, newlines, key-shaped strings,
  URL slugs) put in the cache comes back identical; a smaller number of examples go the
  whole way, over HTTP through the real SDKs and the sandbox, live then replayed;
- the hostile corpus (tests/hostile/answers.py) recorded and replayed through both SDKs,
  streaming and not, and escaped in the HTML export;
- an answer shaped like a live key is kept, flagged (entry, Response, results column) and
  warned about once per process.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import string
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import protokit as pk
from protokit.cache import Cache, SecretShapedAnswerWarning, request_key
from protokit.cache import records as cache_records
from protokit.secrets import looks_like_key

_spec = importlib.util.spec_from_file_location("hostile_answers", Path(__file__).parent / "hostile" / "answers.py")
assert _spec is not None and _spec.loader is not None
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)
ANSWERS: dict[str, str] = hostile.ANSWERS

pytestmark = pytest.mark.filterwarnings("ignore::protokit.cache.SecretShapedAnswerWarning")

_KEY_BODY = string.ascii_letters + string.digits + "-_"
KEY_SHAPED = st.builds(lambda prefix, body: prefix + body,
                       st.sampled_from(["sk-", "sk-proj-", "sk-ant-api03-", "AKIA", "task-", "ask-"]),
                       st.text(_KEY_BODY, min_size=12, max_size=48))
URL_SLUG = st.lists(st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True), min_size=1, max_size=8).map(
    lambda words: "https://example.com/blog/" + "-".join(words))
SPECIAL = st.sampled_from(["\x00", "\n", "\r\n", "\t", "'); DROP TABLE entries;--", "<script>x</script>",
                          '{"text": "json"}', "\\u0000", "[redacted]", "\u2028", "🙂", " "])
PIECE = st.one_of(st.text(max_size=120), KEY_SHAPED, URL_SLUG, SPECIAL)
TEXTS = st.one_of(st.text(), st.lists(PIECE, max_size=6).map("".join))
# The cache path also takes lone surrogates (an SDK can decode one from a JSON body).
ANY_TEXT = st.one_of(TEXTS, st.text(st.characters(exclude_categories=())))


def _request(prompt: str, sample: int = 0) -> dict[str, Any]:
    return {"provider": "openai", "model": "echo", "messages": [{"role": "user", "content": prompt}],
            "options": {"temperature": 0}, "sample": sample}


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=ANY_TEXT, prompt=TEXTS)
def test_the_cache_stores_any_answer_and_prompt_verbatim(tmp_path: Path, text: str, prompt: str) -> None:
    with Cache(tmp_path / "prop.db") as cache:
        req = _request(prompt)
        key = request_key(req)
        cache.put(key, req, {"text": text, "model": "echo", "latency_s": 0.1})
        entry = cache.get(key)
        assert entry is not None and entry["text"] == text
        assert entry.get("secret_shaped", False) is looks_like_key(text)
        stored = cache.entries([key])[0]["request"]
        assert stored["messages"] == req["messages"]  # prompts are never rewritten either
        replayed = pk.Response.from_entry("openai:echo", entry, sample=0, key=key)
        assert replayed.text == text and replayed.cached


@pytest.fixture
def echo_models(sandbox) -> dict[str, pk.Model]:
    return {"openai": pk.model("openai:echo", base_url=sandbox.openai_base_url, api_key="k"),
            # Anthropic needs max_tokens; the sandbox cuts answers longer than it (in words).
            "anthropic": pk.model("anthropic:echo", base_url=sandbox.anthropic_base_url, api_key="k",
                                  max_tokens=1_000_000)}


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXTS, provider=st.sampled_from(["openai", "anthropic"]))
def test_replay_equals_live_over_http(sandbox, echo_models: dict[str, pk.Model], text: str, provider: str) -> None:
    # Anthropic's API refuses an empty message (so does the sandbox): echo cannot be asked to answer nothing.
    assume(provider != "anthropic" or text != "")
    model = echo_models[provider]
    pk.cache.configure(mode="record")  # always goes to the server, and records what came back
    before = sandbox.stats()["requests"]
    live = model.complete(text)
    assert sandbox.stats()["requests"] == before + 1  # the live answer really came over HTTP
    pk.cache.configure(mode="replay")  # never the network: a miss would raise
    replay = model.complete(text)
    assert sandbox.stats()["requests"] == before + 1
    assert not live.cached and replay.cached
    assert live.text == text  # the echo model answers with the prompt, exactly
    assert replay.text == live.text
    assert replay.secret_shaped is live.secret_shaped is looks_like_key(text)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_hostile_answers_record_and_replay_byte_identically(sandbox, echo_models: dict[str, pk.Model],
                                                            provider: str, stream: bool) -> None:
    model = echo_models[provider]
    # Streamed, every word is an event the SDK parses: the long prose one is left to the unstreamed run.
    # Anthropic refuses an empty message, so echo cannot be asked there for an empty answer (OpenAI covers it).
    answers = {n: t for n, t in ANSWERS.items() if (not stream or len(t.split()) < 2000)
               and (provider != "anthropic" or t)}
    before = sandbox.stats()["requests"]

    def ask(text: str) -> pk.Response:
        if not stream:
            return model.complete(text)
        s = model.stream(text)
        joined = "".join(s)
        assert s.response is not None and joined == s.response.text
        return s.response

    live = {name: ask(text) for name, text in answers.items()}
    assert sandbox.stats()["requests"] == before + len(answers)
    pk.cache.configure(mode="replay")
    replayed = {name: ask(text) for name, text in answers.items()}
    assert sandbox.stats()["requests"] == before + len(answers)
    for name, text in answers.items():
        assert not live[name].cached and replayed[name].cached, name
        assert live[name].text == text, name
        assert replayed[name].text.encode("utf-8") == text.encode("utf-8"), name
        assert replayed[name].secret_shaped is looks_like_key(text), name


def test_url_slugs_are_not_mistaken_for_keys(sandbox, echo_models: dict[str, pk.Model]) -> None:
    url = "https://example.com/blog/task-management-best-practices"
    live = echo_models["openai"].complete(url)
    replay = echo_models["openai"].complete(url)
    assert replay.cached and replay.text == live.text == url and not replay.secret_shaped
    db = Path(pk.cache.get_cache().path)
    blob = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert b"[redacted]" not in blob and blob.count(url.encode()) >= 1


def test_hostile_answers_through_compare_and_the_html_export(sandbox, echo_models: dict[str, pk.Model]) -> None:
    # Not the empty answer: Anthropic refuses an empty message (the tests above cover it with OpenAI).
    hostile = {name: text for name, text in ANSWERS.items() if text}
    cases = [{"case": name, "q": text} for name, text in hostile.items()]
    models = list(echo_models.values())
    live = pk.compare(models, "{q}", cases)
    pk.cache.configure(mode="replay")
    replay = pk.compare(models, "{q}", cases)
    for cmp, cached in ((live, False), (replay, True)):
        r = cmp.results
        assert r["error"].isna().all(), r["error_message"].dropna().tolist()
        assert (r["cached"] == cached).all()
        by_case = {(row.case, row.model): row.output for row in r.itertuples()}
        for name, text in hostile.items():
            for m in models:
                assert by_case[(name, m.id)] == text, (name, m.id)
        assert r["secret_shaped"].tolist() == [looks_like_key(c["q"]) for c in cases for _ in models]
    page = replay.to_html(max_rows=None)
    assert "<script>alert(" not in page and "<img src=x" not in page  # answers are text, never markup
    assert "&lt;script&gt;alert(" in page


def test_a_key_shaped_answer_is_kept_flagged_and_warned_once(sandbox, echo_models: dict[str, pk.Model],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_records, "_secret_warned", False)
    model = echo_models["openai"]
    first = f"Sure, here it is: {hostile.OPENAI_KEY}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        live = model.complete(first)
        model.complete(f"another one: {hostile.ANTHROPIC_KEY}")
        model.complete("nothing to see")
    shaped = [w for w in caught if issubclass(w.category, SecretShapedAnswerWarning)]
    assert len(shaped) == 1  # once per process
    message = str(shaped[0].message)
    assert "openai:echo" in message and "secret_shaped" in message
    assert hostile.OPENAI_KEY not in message and "Zq9" * 3 not in message  # the prompt shown is redacted
    assert live.text == first and live.secret_shaped and not live.cached
    replay = model.complete(first)
    assert replay.cached and replay.text == first and replay.secret_shaped
    assert not model.complete("nothing to see").secret_shaped
    entry = pk.cache.get_cache().get(live.key or "")
    assert entry is not None and entry["secret_shaped"] is True and entry["text"] == first
    row = sqlite3.connect(pk.cache.get_cache().path).execute(
        "SELECT entry FROM entries WHERE key = ?", (live.key,)).fetchone()
    assert json.loads(row[0])["text"] == first
