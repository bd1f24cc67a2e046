"""Files that may hold prompts, answers or parameters are private, and a cassette holds no secret.

Under a umask of 0o022 (the usual one, which would give 0644): the cache, its -wal and
-shm, the run store (in the cache file), an exported cassette and everything
``protokit run`` writes under ``.protokit/`` are created 0600 (folders 0700). A cassette
is meant to be committed, so ``Cache.export`` runs the secret detector over it first: a
hit is a one-line CacheError naming the case, and nothing is written.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import protokit as pk
from protokit.cache import Cache, request_key
from protokit.comparisons import list_runs
from protokit.errors import CacheError
from protokit.secrets import mask

pytestmark = pytest.mark.filterwarnings("ignore::protokit.cache.SecretShapedAnswerWarning")

KEY = "sk-" + "proj-" + "Zq9" * 12
AWS = "AKIA" + "Q7XZ" * 4
PROTOKIT = str(Path(sys.executable).with_name("protokit"))
KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def _umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def req(prompt: str = "hello", **options: Any) -> dict[str, Any]:
    return {"provider": "openai", "model": "gpt-4.1-mini", "messages": [{"role": "user", "content": prompt}],
            "options": {"temperature": 0, **options}, "sample": 0}


def put(cache: Cache, prompt: str, text: str, **options: Any) -> str:
    r = req(prompt, **options)
    key = request_key(r)
    cache.put(key, r, {"text": text, "model": "gpt-4.1-mini"})
    return key


# -- modes -------------------------------------------------------------------------------
def test_the_cache_its_wal_and_shm_and_the_run_store_are_0600(tmp_path: Path, sandbox) -> None:
    db = tmp_path / "private.db"
    pk.cache.configure(path=db, mode="auto")
    model = pk.model("openai:echo", base_url=sandbox.openai_base_url, api_key="k")
    cmp = pk.compare([model], "{q}", [{"q": "one"}, {"q": "two"}])  # answers and the run store
    assert cmp.run_id is not None and len(list_runs()) == 1
    for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        assert p.exists(), p
        assert mode(p) == 0o600, p


def test_an_exported_cassette_is_0600_even_over_a_stale_temp_file(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.db") as cache:
        put(cache, "hello", "world")
        out = tmp_path / "cassette.json"
        stale = tmp_path / f".cassette.json.{os.getpid()}.tmp"
        stale.write_text("half a cassette")
        os.chmod(stale, 0o644)
        assert cache.export(out) == 1
    assert mode(out) == 0o600
    # The writer's temp file has a fresh name (O_EXCL): a stale one is never reused, so it cannot
    # lend the cassette its mode, and it is not ours to remove.
    assert stale.read_text() == "half a cassette"
    assert json.loads(out.read_text())["entries"][0]["entry"]["text"] == "world"


def test_protokit_run_writes_its_records_privately(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from protokit.notebook import run_notebook

    nb = new_notebook(metadata={"kernelspec": KERNEL})
    nb.cells = [new_markdown_cell("# Modes"),
                new_code_cell("n: int = 1  # a number", metadata={"tags": ["parameters"]}),
                new_code_cell("print(n * 2)")]
    path = tmp_path / "modes.ipynb"
    nbformat.write(nb, path)
    monkeypatch.setenv("PROTOKIT_CACHE", str(tmp_path / "cache.db"))
    out = run_notebook(path, {"n": 3})  # the default output: under .protokit/runs/
    own = run_notebook(path, {"n": 4}, output_path=tmp_path / "mine.ipynb")
    hidden = tmp_path / ".protokit"
    assert out.parent == hidden / "runs"
    assert mode(hidden) == 0o700 and mode(hidden / "runs") == 0o700
    for p in (hidden / "runs.json", hidden / "runs.lock", out):
        assert mode(p) == 0o600, p
    for p in hidden.rglob("*"):
        assert mode(p) in (0o600, 0o700), p
    # A notebook written where the user asked keeps the usual mode: notebooks are meant to be shared.
    assert mode(own) == 0o644
    assert not list(tmp_path.rglob("*.tmp"))


# -- the cassette check ---------------------------------------------------------------------
@pytest.mark.parametrize(("prompt", "answer", "where", "kind"), [
    ("Say my key back: " + KEY, "no", "the prompt", "an OpenAI project key"),
    ("What is the key?", "It is " + KEY, "the answer", "an OpenAI project key"),
], ids=["prompt", "answer"])
def test_export_refuses_a_cassette_holding_a_secret(tmp_path: Path, prompt: str, answer: str, where: str,
                                                    kind: str) -> None:
    with Cache(tmp_path / "c.db") as cache:
        put(cache, "harmless", "fine")
        put(cache, prompt, answer)
        out = tmp_path / "cassette.json"
        with pytest.raises(CacheError) as err:
            cache.export(out)
        message = str(err.value)
        with pytest.raises(CacheError, match="not written"):
            cache.export(io.StringIO())  # promote's path: the cassette text is built in memory first
    assert len(message.splitlines()) == 1
    assert f"{where} of openai:gpt-4.1-mini" in message and kind in message and mask(KEY) in message
    assert f"prompt '{prompt[:12]}" in message  # the case is named by its prompt's first characters
    assert KEY not in message and "Zq9" * 3 not in message
    # Nothing written, not even a temp file (protokit.db is the test's global cache).
    assert all(p.name.startswith(("c.db", "protokit.db")) for p in tmp_path.iterdir())


def test_export_refuses_secrets_left_in_options_by_an_older_version(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.db") as cache:
        r = req("hi", metadata={"aws": AWS})  # stored as-is, as a version without this detector could have
        with cache.transaction() as conn:
            conn.execute("INSERT INTO entries VALUES (?, 'openai', 'gpt-4.1-mini', 0, ?, ?, NULL, '2025-01-01')",
                         ("k", json.dumps(r), json.dumps({"text": "ok"})))
        with pytest.raises(CacheError, match=r"the request options of openai:gpt-4\.1-mini .*" + re.escape(mask(AWS))):
            cache.export(tmp_path / "out.json")
    assert not (tmp_path / "out.json").exists()


def test_an_option_with_a_key_never_reaches_the_cassette(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.db") as cache:
        put(cache, "hi", "ok", user=KEY, api_key=KEY)  # masked and dropped when stored
        assert cache.export(tmp_path / "out.json") == 1
    assert "Zq9" * 3 not in (tmp_path / "out.json").read_text()


def test_cli_export_refuses_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    with Cache(db) as cache:
        put(cache, "What is the key?", "It is " + KEY)
    out = tmp_path / "cassette.json"
    done = subprocess.run([PROTOKIT, "cache", "export", str(out), "--path", str(db)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cassette ")
    assert "the answer of openai:gpt-4.1-mini" in lines[0]
    assert "Traceback" not in done.stderr and "Zq9" * 3 not in done.stderr
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))
