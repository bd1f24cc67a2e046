"""No credential leaves through an error text.

Calls fail in every way that can quote a credential: a Python-callable model raising
with a key in its message, a server whose 401 body quotes the key sent (the sandbox's
``leaky401`` fault, through both SDKs), a ``base_url`` with a password in its user-info
that cannot be reached, a model whose code fails unexpectedly, a scorer raising with a
key. None of the key, any run of its body, or the password may appear in the results
(every column), the CSV and HTML exports, the run store, the cache file and its WAL,
anything under the folder, the logs, the warnings, a traceback, or the CLI's output.
Fake keys are built at run time, so the repository holds no key-shaped literal.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import traceback
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import protokit as pk
from protokit.errors import AuthError, ProtokitError, ProviderConnectionError, ServerError, safe_text
from protokit.models.base import Request, Usage
from protokit.secrets import mask

KEY = "sk-" + "proj-" + "Zq9" * 12
PASSWORD = "pw" + "Lk8" * 5
# A run of the key's body: finding one means the key leaked in part (a mask keeps only 4 characters).
FRAGMENTS = (KEY, "Zq9" * 3, PASSWORD)
MASKED = mask(KEY)
PROTOKIT = str(Path(sys.executable).with_name("protokit"))


def leaks(text: str | bytes) -> list[str]:
    data = text if isinstance(text, str) else text.decode("utf-8", "replace")
    return [f for f in FRAGMENTS if f in data]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def boom(prompt: str) -> str:
    raise RuntimeError(f"auth failed for {KEY}")


def fine(prompt: str) -> str:
    return "ok"


def leaky_scorer(output: str, case: dict[str, Any]) -> bool:
    raise ValueError(f"could not grade with token {KEY}")


class Broken(pk.Model):
    """A provider whose code fails with something that is not a ProviderError (the runner's catch-all)."""

    provider = "broken"

    async def execute(self, request: Request, usage: Usage) -> AsyncIterator[str]:
        raise LookupError(f"no session for key={KEY}")
        yield ""  # pragma: no cover - makes this an async generator


@pytest.fixture
def failing_models(sandbox) -> list[pk.Model]:
    sandbox.set_faults("leaky401=1")  # every sandbox request: a 401 whose body quotes the key sent
    return [
        pk.model(boom),
        pk.model(fine),
        pk.model("openai:leaky", base_url=sandbox.openai_base_url, api_key=KEY),
        pk.model("anthropic:leaky", base_url=sandbox.anthropic_base_url, api_key=KEY),
        pk.model("openai:down", base_url=f"http://user:{PASSWORD}@127.0.0.1:{closed_port()}/v1", api_key="k"),
        Broken("buggy"),
    ]


def test_the_sandbox_fault_really_quotes_the_key(sandbox) -> None:
    import openai

    sandbox.set_faults("leaky401=1")
    client = openai.OpenAI(base_url=sandbox.openai_base_url, api_key=KEY, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raw:
        client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])
    assert KEY in str(raw.value.body)  # what protokit has to keep out of sight


def test_no_error_text_carries_a_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture, failing_models: list[pk.Model]) -> None:
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cmp = pk.compare(failing_models, "{q}", [{"q": "hello"}], [leaky_scorer], retries=0)
    r = cmp.results.set_index("model")
    # Each failure is reported, with the key masked and the password replaced.
    assert r.loc["callable:boom", "error_message"] == f"callable:boom: the function raised RuntimeError: auth failed " \
                                                      f"for {MASKED}"
    for m in ("openai:leaky", "anthropic:leaky"):
        assert r.loc[m, "error"] == "auth" and r.loc[m, "error_status"] == 401
        assert MASKED in r.loc[m, "error_message"]
    assert r.loc["openai:down", "error"] == "connection"
    assert "http://[redacted]@127.0.0.1:" in r.loc["openai:down", "error_message"]
    assert r.loc["broken:buggy", "error"] == "provider" and "LookupError" in r.loc["broken:buggy", "error_message"]
    assert r.loc["callable:fine", "scorer_error"] == f"leaky_scorer: ValueError: could not grade with token {MASKED}"

    seen = {
        "results": cmp.results.to_json(force_ascii=False),
        "csv": cmp.to_csv() or "",
        "html": cmp.to_html(),
        "report": cmp.report() + repr(cmp) + cmp._repr_html_(),
        "stored run": pk.load_run(cmp.run_id or "").results.to_json(force_ascii=False),
        "logs": caplog.text,
        "warnings": "\n".join(str(w.message) for w in caught),
    }
    cmp.to_csv(tmp_path / "out.csv")
    cmp.to_html(tmp_path / "out.html")
    db = pk.cache.get_cache().path
    done = subprocess.run([PROTOKIT, "runs", "show", cmp.run_id or "", "--path", str(db),
                           "--csv", str(tmp_path / "cli.csv"), "--html", str(tmp_path / "cli.html")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    seen["cli"] = done.stdout + done.stderr
    for where, text in seen.items():
        assert leaks(text) == [], where
    # Every file written: the cache (its run store too) with its -wal and -shm, exports, .protokit/.
    files = [p for p in [*tmp_path.rglob("*"), *db.parent.glob(db.name + "*")] if p.is_file()]
    assert {db, tmp_path / "out.csv", tmp_path / "cli.html"} <= set(files)
    for path in files:
        assert leaks(path.read_bytes()) == [], path


def test_a_raised_error_and_its_traceback_show_no_credential(sandbox) -> None:
    sandbox.set_faults("leaky401=1")
    for model in (pk.model("openai:leaky", base_url=sandbox.openai_base_url, api_key=KEY),
                  pk.model("anthropic:leaky", base_url=sandbox.anthropic_base_url, api_key=KEY)):
        with pytest.raises(AuthError) as err:
            model.complete("hello")
        assert MASKED in str(err.value)
        # What a notebook or the terminal prints: the whole chain, the SDK's own error included.
        assert leaks("".join(traceback.format_exception(err.value))) == []
    with pytest.raises(ServerError) as err:
        pk.model(boom).complete("hello")
    shown = "".join(traceback.format_exception(err.value))
    assert "RuntimeError: auth failed for" in shown and leaks(shown) == []
    down = pk.model("openai:down", base_url=f"http://user:{PASSWORD}@127.0.0.1:{closed_port()}/v1", api_key="k")
    with pytest.raises(ProviderConnectionError) as conn:
        down.complete("hello")
    assert leaks("".join(traceback.format_exception(conn.value))) == []


def test_every_protokit_error_is_redacted_when_built() -> None:
    for cls in (ProtokitError, pk.ConfigError, pk.CacheError, ServerError):
        err = cls(f"failed with {KEY} at https://me:{PASSWORD}@example.com/v1")
        assert str(err) == f"failed with {MASKED} at https://[redacted]@example.com/v1"
    assert safe_text("https://example.com/blog/task-management-best-practices") == \
        "https://example.com/blog/task-management-best-practices"


def test_the_cli_shows_no_credential(tmp_path: Path) -> None:
    pk.cache.get_cache().put("k", {"provider": "openai", "model": "echo", "messages": [], "options": {}},
                             {"text": "ok"})
    env = {**os.environ, "PROTOKIT_CACHE": str(pk.cache.get_cache().path)}
    # A ProtokitError quoting what was typed, and a usage error quoting it.
    for args in (["runs", "show", KEY], [KEY], ["cache", "stats", "--path", str(tmp_path / KEY)]):
        done = subprocess.run([PROTOKIT, *args], capture_output=True, text=True, env=env, timeout=120, check=False)
        assert done.returncode != 0
        assert leaks(done.stdout + done.stderr) == [], done.stderr
        assert "Traceback" not in done.stderr
