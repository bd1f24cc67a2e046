"""Tests of the record/replay cache and its command line (no network, all in tmp_path)."""

from __future__ import annotations

import io
import json
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from protokit import cache as cache_mod
from protokit.cache import (
    MIGRATIONS,
    MODES,
    Cache,
    configure,
    get_cache,
    read_cassette,
    register_migration,
    request_key,
)
from protokit.cli.cache import command
from protokit.errors import CacheError, CacheMiss
from protokit.secrets import mask

SECRET = "sk-proj-THISisAfakeKEY1234567890abcdefXYZ"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every test runs in its own directory with no cache environment and a fresh global."""
    monkeypatch.chdir(tmp_path)
    for name in ("PROTOKIT_CACHE", "PROTOKIT_CACHE_MODE", "PROTOKIT_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    saved = list(MIGRATIONS)
    cache_mod.reset()
    yield
    cache_mod.reset()
    MIGRATIONS[:] = saved


def req(prompt: str = "Classify: my card was charged twice yesterday", *, sample: int = 0,
        model: str = "gpt-4.1-mini", **options: Any) -> dict[str, Any]:
    return {"provider": "openai", "model": model, "messages": [{"role": "user", "content": prompt}],
            "options": {"temperature": 0, **options}, "sample": sample}


def entry(text: str = "billing", **extra: Any) -> dict[str, Any]:
    return {"text": text, "model": "gpt-4.1-mini-2025-04-14", "input_tokens": 12, "output_tokens": 3,
            "cached_input_tokens": None, "reasoning_tokens": None, "cost_usd": 0.0000123,
            "latency_s": 0.8731, "ttft_s": None, "finish_reason": "stop", **extra}


def file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


# -- keys -------------------------------------------------------------------------
def test_key_is_canonical_json_sha256() -> None:
    r = req()
    shuffled = {"sample": 0, "options": {"temperature": 0}, "messages": r["messages"],
                "model": "gpt-4.1-mini", "provider": "openai"}
    assert request_key(r) == request_key(shuffled)
    assert len(request_key(r)) == 64
    import hashlib
    canon = json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert request_key(r) == hashlib.sha256(canon.encode()).hexdigest()


def test_key_depends_on_sample_options_and_prompt_not_base_url() -> None:
    assert request_key(req(sample=0)) != request_key(req(sample=1))
    assert request_key(req(temperature=1)) != request_key(req())
    assert request_key(req("a")) != request_key(req("b"))
    # base_url and keys live on the model, never in the request dict: the contract says so.
    doc = " ".join((cache_mod.__doc__ or "").split())
    assert "``base_url``, API keys and headers are NOT part of it" in doc


def test_key_handles_unicode_without_escaping() -> None:
    assert request_key(req("café ☕")) != request_key(req("cafe"))


# -- modes --------------------------------------------------------------------------
def test_auto_mode_miss_then_hit_round_trips_entry() -> None:
    c = Cache("protokit.db")
    r = req()
    k = request_key(r)
    assert c.get(k) is None
    e = entry()
    c.put(k, r, e)
    got = c.get(k)
    assert got is not None
    created = got.pop("created_at")
    assert got == e
    assert created.endswith("Z") and "T" in created
    # an explicit created_at is kept as is
    c.put(k, r, {**e, "created_at": "2024-01-01T00:00:00.000Z"})
    assert c.get(k) == {**e, "created_at": "2024-01-01T00:00:00.000Z"}


def test_record_mode_never_hits_and_overwrites() -> None:
    Cache("protokit.db").put(request_key(req()), req(), entry("old"))
    c = Cache("protokit.db", mode="record")
    k = request_key(req())
    assert c.get(k) is None
    c.put(k, req(), entry("new"))
    assert Cache("protokit.db").get(k)["text"] == "new"  # type: ignore[index]


def test_replay_mode_hit_and_miss_message() -> None:
    r = req()
    k = request_key(r)
    Cache("protokit.db").put(k, r, entry())
    c = Cache("protokit.db", mode="replay")
    assert c.get(k)["text"] == "billing"  # type: ignore[index]
    other = req(sample=3)
    assert c.get(request_key(other)) is None
    err = c.miss(request_key(other), other)
    assert isinstance(err, CacheMiss) and err.key == request_key(other)
    msg = str(err)
    assert msg == ("no recorded response for openai:gpt-4.1-mini (sample 3), prompt "
                   "'Classify: my card was charged twi…' in protokit.db (replay mode); "
                   "run once with PROTOKIT_CACHE_MODE=auto to record it")
    with pytest.raises(CacheMiss, match="sample 3"):
        c.lookup(request_key(other), other)
    assert c.lookup(k, r) is not None


def test_miss_message_is_one_line_for_multiline_prompt() -> None:
    r = req("line one\nline two")
    msg = str(Cache("protokit.db", mode="replay").miss(request_key(r), r))
    assert "\n" not in msg and "'line one line two'" in msg


def test_off_mode_touches_no_file() -> None:
    c = Cache("protokit.db", mode="off")
    c.put("k", req(), entry())
    assert c.get("k") is None
    assert not Path("protokit.db").exists()
    assert c.used_keys() == []


def test_switching_mode_from_off_opens_the_file() -> None:
    c = configure(mode="off")
    assert not Path("protokit.db").exists()
    assert configure(mode="auto") is c and Path("protokit.db").exists()
    Path("bad.db").write_bytes(b"nope" * 10)
    off = configure(path="bad.db", mode="off")  # off never reads the file...
    with pytest.raises(CacheError, match="not a protokit cache"):
        configure(mode="replay")  # ...so the problem shows when the cache is turned on
    assert off.mode == "off" and get_cache() is off


def test_unknown_mode_lists_modes() -> None:
    with pytest.raises(CacheError, match="auto, record, replay, off"):
        Cache("protokit.db", mode="playback")
    assert MODES == ("auto", "record", "replay", "off")
    c = Cache("protokit.db")
    with pytest.raises(CacheError):
        c.mode = "nope"


# -- the file --------------------------------------------------------------------
def test_file_mode_0600_and_wal() -> None:
    c = Cache("protokit.db")
    c.put("k", req(), entry())
    for p in Path(".").glob("protokit.db*"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    conn = sqlite3.connect("protokit.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.connection().execute("PRAGMA busy_timeout").fetchone()[0] >= 30000
    assert c.connection().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    conn.close()


def test_missing_directory_is_reported_not_created(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match="does not exist"):
        Cache(tmp_path / "nope" / "protokit.db")
    assert not (tmp_path / "nope").exists()


def test_corrupt_file_refused_and_untouched() -> None:
    bad = Path("protokit.db")
    bad.write_bytes(b"this is not sqlite at all\x00\x01" * 100)
    before = bad.read_bytes()
    with pytest.raises(CacheError, match="not a protokit cache") as info:
        Cache(bad)
    assert "\n" not in str(info.value)
    assert bad.read_bytes() == before
    assert sorted(p.name for p in Path(".").iterdir()) == ["protokit.db"]


def test_damaged_sqlite_cache_refused_and_untouched() -> None:
    c = Cache("protokit.db")
    for i in range(300):
        c.put(f"k{i}", req(str(i) * 50), entry("x" * 200))
    c.close()
    sqlite3.connect("protokit.db").execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    data = bytearray(Path("protokit.db").read_bytes())
    page = 4096
    data[page * 3:page * 6] = bytes(range(256)) * 48  # trash b-tree pages, keep the header
    Path("protokit.db").write_bytes(bytes(data))
    for p in Path(".").glob("protokit.db-*"):
        p.unlink()
    with pytest.raises(CacheError, match="corrupt"):
        Cache("protokit.db")
    assert Path("protokit.db").read_bytes() == bytes(data)


def test_foreign_sqlite_refused_and_untouched() -> None:
    conn = sqlite3.connect("protokit.db")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('mine')")
    conn.commit()
    conn.close()
    before = Path("protokit.db").read_bytes()
    with pytest.raises(CacheError, match="SQLite file of another program"):
        Cache("protokit.db")
    assert Path("protokit.db").read_bytes() == before
    assert sorted(p.name for p in Path(".").iterdir()) == ["protokit.db"]


def test_empty_sqlite_file_becomes_a_cache() -> None:
    sqlite3.connect("protokit.db").close()
    Cache("protokit.db").put("k", req(), entry())
    assert Cache("protokit.db").get("k") is not None


# -- migrations ----------------------------------------------------------------------
def test_migrations_applied_once_and_recorded() -> None:
    Cache("protokit.db").close()
    Cache("protokit.db").close()
    conn = sqlite3.connect("protokit.db")
    names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid")]
    assert names == [n for n, _ in MIGRATIONS]
    assert conn.execute("SELECT value FROM meta WHERE key='app'").fetchone() == ("protokit",)
    conn.close()
    assert Cache("protokit.db").stats()["schema_version"] == 2  # the cache's own schema; sibling stores add theirs


def test_register_migration_applies_to_new_and_open_caches() -> None:
    calls: list[str] = []

    def runs_tables(conn: sqlite3.Connection) -> None:
        calls.append("runs")
        conn.execute("CREATE TABLE runs (id TEXT PRIMARY KEY)")

    c = Cache("protokit.db")  # already open when the sibling registers
    register_migration("runs_0001", runs_tables)
    conn = c.connection()
    conn.execute("INSERT INTO runs VALUES ('r1')")
    Cache("protokit.db").close()
    assert calls == ["runs"]
    with c.transaction() as tx:
        tx.execute("INSERT INTO runs VALUES ('r2')")
    assert [r[0] for r in c.connection().execute("SELECT id FROM runs ORDER BY id")] == ["r1", "r2"]
    assert "runs_0001" in c.stats()["migrations"]


def test_failed_migration_is_rolled_back() -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x)")
        conn.execute("THIS IS NOT SQL")

    register_migration("broken", broken)
    with pytest.raises(CacheError, match="migration broken failed"):
        Cache("protokit.db")
    conn = sqlite3.connect("protokit.db")
    assert conn.execute("SELECT name FROM sqlite_master WHERE name='half'").fetchone() is None
    conn.close()


# -- concurrency ---------------------------------------------------------------------
WORKER = """
import sys, time
from protokit.cache import Cache
path, who, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
while time.time() < start:
    time.sleep(0.001)
c = Cache(path)
for i in range(n):
    r = {"provider": "openai", "model": "m" + who, "messages": [{"role": "user", "content": str(i)}],
         "options": {}, "sample": 0}
    c.put(f"{who}-{i}", r, {"text": f"{who}{i}", "latency_s": 0.1})
    if i % 50 == 0:
        assert c.get(f"{who}-{i}")["text"] == f"{who}{i}"
"""


def test_two_processes_write_one_new_file_at_once(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    start = time.time() + 1.0  # both open the not-yet-existing file at the same moment
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(db), who, "500", str(start)],
                              stderr=subprocess.PIPE, text=True) for who in ("a", "b")]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert not any("locked" in e for e in errors)
    c = Cache(db)
    assert c.stats()["entries"] == 1000
    assert c.stats()["by_model"] == {"openai:ma": 500, "openai:mb": 500}
    assert c.connection().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    names = [r[0] for r in c.connection().execute("SELECT name FROM schema_migrations")]
    assert len(names) == len(set(names)) == len(MIGRATIONS)  # each applied exactly once


_ONE_WRITE = """
import sys
from protokit.cache import Cache
c = Cache(sys.argv[1])
c.put("other", {"provider": "openai", "model": "m", "messages": [], "options": {}, "sample": 0}, {"text": "o"})
"""


def test_opening_a_cache_twice_in_one_process_keeps_its_wal_safe_from_other_processes(tmp_path: Path) -> None:
    """A second Cache on a file this process has open (pk.load_run of the configured cache does this) must not
    drop the first one's locks: another process that then closed the file would take itself for its last user
    and delete the WAL, and the first connection's later writes would go to a deleted file and be lost."""
    db = tmp_path / "shared.db"
    first = Cache(db)
    first.put("before", req("before"), entry("before"))
    Cache(db, mode="replay").get("before")  # opened (and inspected) again, as a second reader
    done = subprocess.run([sys.executable, "-c", _ONE_WRITE, str(db)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert Path(f"{db}-wal").exists()  # still ours: the other process did not take it
    first.put("after", req("after"), entry("after"))
    first.close()
    out = subprocess.run([sys.executable, "-c", "import sys; from protokit.cache import Cache; "
                          "print(sorted(e['key'] for e in Cache(sys.argv[1], mode='replay').entries()))", str(db)],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["['after',", "'before',", "'other']"], out.stderr


def test_threads_share_one_cache() -> None:
    c = Cache("protokit.db")
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(200):
                k = f"{t}-{i}"
                c.put(k, req(k), entry(k))
                assert c.get(k)["text"] == k  # type: ignore[index]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert c.stats()["entries"] == 1600
    assert len(c.used_keys()) == 1600


# -- secrets ---------------------------------------------------------------------------
def test_secrets_never_reach_the_file() -> None:
    c = Cache("protokit.db")
    r = req(api_key=SECRET, extra_headers={"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET},
            user=SECRET, metadata={"note": f"token {SECRET}"})
    k = request_key(r)
    c.put(k, r, entry())
    c.export("out.json")
    blob = file_bytes(Path("protokit.db")) + Path("out.json").read_bytes()
    assert SECRET.encode() not in blob
    assert b"THISisAfakeKEY" not in blob
    stored = c.entries([k])[0]["request"]["options"]
    assert "api_key" not in stored and stored["extra_headers"] == {}
    # Options are where credentials travel: masked there (protokit.secrets), never in messages or answers.
    assert stored["temperature"] == 0 and stored["user"] == mask(SECRET)


# -- usage tracking ---------------------------------------------------------------------
def test_used_keys_in_first_use_order() -> None:
    c = Cache("protokit.db")
    c.put("b", req("b"), entry())
    c.put("a", req("a"), entry())
    c.get("b")
    assert c.get("zzz") is None
    assert c.used_keys() == ["b", "a"]
    assert Cache("protokit.db").used_keys() == []


def test_keys_for_run(monkeypatch: pytest.MonkeyPatch) -> None:
    Cache("protokit.db").put("old", req("old"), entry())
    monkeypatch.setenv("PROTOKIT_RUN_ID", "run-1")
    c = Cache("protokit.db")
    c.put("new", req("new"), entry())
    c.get("old")
    c.get("new")
    c.get("missing")
    monkeypatch.delenv("PROTOKIT_RUN_ID")
    other = Cache("protokit.db")  # another process reads the run's keys later
    assert other.keys_for_run("run-1") == ["new", "old"]
    assert other.keys_for_run("run-2") == []
    other.get("old")
    assert other.keys_for_run("run-1") == ["new", "old"]


# -- export / load -------------------------------------------------------------------------
def test_export_is_deterministic_and_loads_back(tmp_path: Path) -> None:
    c = Cache("protokit.db")
    for i in reversed(range(20)):
        r = req(f"prompt {i} ünïcødé", sample=i % 3)
        c.put(request_key(r), r, entry(f"answer {i}", created_at="2025-01-01T00:00:00.000Z"))
    assert c.export("one.json") == 20
    assert c.export("two.json") == 20
    one = Path("one.json").read_bytes()
    assert one == Path("two.json").read_bytes()
    assert one.endswith(b"}\n") and "ünïcødé".encode() in one
    data = json.loads(one)
    assert data["protokit_cassette"] == 1
    keys = [e["key"] for e in data["entries"]]
    assert keys == sorted(keys)

    records = read_cassette("one.json")
    fresh = Cache(tmp_path / "fresh.db", mode="replay")
    assert fresh.load(records) == 20
    buf = io.StringIO()
    fresh.export(buf)
    assert buf.getvalue().encode() == one
    assert fresh.get(keys[0]) == data["entries"][0]["entry"]

    assert c.export("part.json", keys=[*keys[:3], "not-there"]) == 3


@pytest.mark.parametrize("content", ["not json", "[]", '{"protokit_cassette": 2, "entries": []}',
                                     '{"protokit_cassette": 1, "entries": [{"key": "k"}]}'])
def test_read_cassette_rejects_bad_shapes(content: str) -> None:
    Path("bad.json").write_text(content)
    with pytest.raises(CacheError, match=r"bad\.json"):
        read_cassette("bad.json")


def test_stats_and_clear() -> None:
    c = Cache("protokit.db")
    for i in range(3):
        c.put(f"a{i}", req(str(i)), entry(cost_usd=0.5))
    c.put("b", req("b", model="gpt-4.1"), entry(cost_usd=None))
    s = c.stats()
    assert s["entries"] == 4 and s["by_model"] == {"openai:gpt-4.1-mini": 3, "openai:gpt-4.1": 1}
    assert s["total_cost_usd"] == pytest.approx(1.5)
    assert s["size_bytes"] > 0 and s["oldest"] <= s["newest"]
    assert c.clear("openai:gpt-4.1") == 1
    assert c.clear("gpt-4.1-mini") == 3
    assert c.clear() == 0


# -- the process-wide cache ----------------------------------------------------------
def test_get_cache_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROTOKIT_CACHE", str(tmp_path / "env.db"))
    monkeypatch.setenv("PROTOKIT_CACHE_MODE", "replay")
    c = get_cache()
    assert c is get_cache()
    assert c.path == tmp_path / "env.db" and c.mode == "replay"


def test_get_cache_defaults(tmp_path: Path) -> None:
    c = get_cache()
    assert c.path == tmp_path / "protokit.db" and c.mode == "auto"


def test_configure_keeps_what_is_not_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = configure(mode="record")
    assert c.mode == "record" and c.path == tmp_path / "protokit.db"
    assert configure(mode="replay") is c and c.mode == "replay"
    d = configure(path=tmp_path / "other.db")
    assert d is get_cache() and d.mode == "replay" and d.path == tmp_path / "other.db"
    with pytest.raises(CacheError):
        configure(mode="bogus")
    assert get_cache() is d
    monkeypatch.setenv("PROTOKIT_CACHE_MODE", "bogus")
    cache_mod.reset()
    with pytest.raises(CacheError, match="PROTOKIT_CACHE_MODE"):
        get_cache()


# -- command line -----------------------------------------------------------------------
def _filled(path: str = "protokit.db") -> Cache:
    c = Cache(path)
    c.put("k1", req("one"), entry(cost_usd=0.25))
    c.put("k2", req("two", model="gpt-4.1"), entry(cost_usd=0.5))
    return c


def test_cli_stats() -> None:
    _filled().close()
    res = CliRunner().invoke(command, ["stats"])
    assert res.exit_code == 0, res.output
    assert "entries" in res.output and "openai:gpt-4.1-mini" in res.output and "$0.7500" in res.output
    res = CliRunner().invoke(command, ["stats", "--json", "--path", "protokit.db"])
    assert json.loads(res.output)["entries"] == 2


def test_cli_stats_missing_file_does_not_create_it() -> None:
    res = CliRunner().invoke(command, ["stats", "--path", "absent.db"])
    assert res.exit_code != 0
    assert isinstance(res.exception, CacheError) and "no cache at absent.db" in str(res.exception)
    assert not Path("absent.db").exists()


def test_cli_clear_needs_confirmation() -> None:
    _filled().close()
    res = CliRunner().invoke(command, ["clear"], input="n\n")
    assert res.exit_code != 0
    assert Cache("protokit.db").stats()["entries"] == 2
    res = CliRunner().invoke(command, ["clear", "--model", "openai:gpt-4.1", "--yes"])
    assert res.exit_code == 0 and "removed 1 entry" in res.output
    res = CliRunner().invoke(command, ["clear"], input="y\n")
    assert res.exit_code == 0 and "removed 1 entry" in res.output


def test_cli_export_all_and_by_run(monkeypatch: pytest.MonkeyPatch) -> None:
    _filled().close()
    monkeypatch.setenv("PROTOKIT_RUN_ID", "r42")
    Cache("protokit.db").get("k2")
    monkeypatch.delenv("PROTOKIT_RUN_ID")
    res = CliRunner().invoke(command, ["export", "all.json"])
    assert res.exit_code == 0 and "wrote 2 entries" in res.output
    assert len(read_cassette("all.json")) == 2
    res = CliRunner().invoke(command, ["export", "run.json", "--run", "r42"])
    assert res.exit_code == 0, res.output
    assert [r["key"] for r in read_cassette("run.json")] == ["k2"]
    res = CliRunner().invoke(command, ["export", "none.json", "--run", "nope"])
    assert isinstance(res.exception, CacheError)


def test_cli_corrupt_file_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    Path("protokit.db").write_bytes(b"garbage" * 50)
    monkeypatch.setenv("PROTOKIT_CACHE", "protokit.db")
    exe = Path(sys.executable).with_name("protokit")
    out = subprocess.run([str(exe), "cache", "stats"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: protokit.db is not a protokit cache")
    assert Path("protokit.db").read_bytes() == b"garbage" * 50
