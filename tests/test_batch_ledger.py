"""What a batch run keeps, and where: each batch's requests in the ledger's rows (not in memory), batches
split at the provider's limits, a batch picked up for some of its requests read whole into the cache,
and a ledger of the earlier format (every request inside its job's state) migrated and resumed."""

from __future__ import annotations

import json
import sqlite3
import time

import openai
from hypothesis import given, settings
from hypothesis import strategies as st
from test_batch import _run_and_kill

import protokit as pk
from protokit import _aio
from protokit import batch as batch_mod
from protokit.batch import ledger as ledger_mod
from protokit.batch.base import BatchInput
from protokit.batch.openai import OpenAIBatches

KEY = "sandbox-key"
SPECS = ("openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5")


def models(sb, *specs: str) -> list[pk.Model]:
    return [pk.model(s, base_url=sb.openai_base_url if s.startswith("openai:") else sb.anthropic_base_url,
                     api_key=KEY) for s in specs or SPECS]


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(), min_size=1, max_size=5))
def test_any_prompt_is_one_jsonl_line_to_any_line_reader(texts):
    """However a provider splits the file (on "\\n", or str.splitlines() with U+2028, U+0085 and the rest),
    each request is one line that decodes back to what was written."""
    written = [{"custom_id": f"c{i}", "body": {"messages": [{"role": "user", "content": t}]}}
               for i, t in enumerate(texts)]
    with BatchInput(max_requests=10, max_bytes=10_000_000) as b:
        assert all(b.add(line) for line in written)
        data = b.file().read()
    text = data.decode("utf-8")
    assert [json.loads(x) for x in text.splitlines()] == written
    assert [json.loads(x) for x in text.split("\n") if x] == written


def test_batch_input_keeps_to_its_limits_and_always_takes_a_first_line():
    with BatchInput(max_requests=3, max_bytes=10_000) as b:
        assert all(b.add({"i": i, "text": "é"}) for i in range(3)) and not b.add({"i": 3})
        assert b.count == 3 and b.file().read() == "".join(
            f'{{"i":{i},"text":"\\u00e9"}}\n' for i in range(3)).encode() and b.size == len(b.file().read())
        assert list(b.lines()) == [{"i": i, "text": "é"} for i in range(3)]
    with BatchInput(max_requests=3, max_bytes=50) as b:
        assert b.add({"text": "x" * 100})  # too big for any batch: sent alone, for the provider to refuse
        assert not b.add({"i": 1})
    with BatchInput(max_requests=3, max_bytes=20) as b:
        assert b.add({"i": 1}) and b.add({"i": 2}) and not b.add({"i": 3})  # 8 bytes a line: the third passes 20


def test_requests_past_a_batch_limit_go_as_several_batches_each_with_its_rows_in_the_ledger(sb, monkeypatch):
    monkeypatch.setattr(OpenAIBatches, "max_requests", 3)
    cases = [{"q": f"question {i}"} for i in range(8)]
    cmp = pk.compare(models(sb, "openai:gpt-4.1-mini"), "{q}", cases, batch=True)
    assert cmp.status == "finished" and len(cmp.results) == 8 and cmp.results["error"].isna().all()
    assert sb.stats()["batches"] == {"openai": 3} and sb.stats()["by_api"] == {"openai_batch": 8}
    with sqlite3.connect(pk.cache.get_cache().path) as conn:
        jobs = conn.execute("SELECT j.status, json_extract(j.state, '$.size'), COUNT(r.key), "
                            "json_extract(j.state, '$.requests') FROM batch_jobs j JOIN batch_requests r "
                            "ON r.job_id = j.id GROUP BY j.id").fetchall()
        tags = sorted(json.loads(t)[0] for (t,) in conn.execute("SELECT tags FROM batch_requests"))
    assert sorted(jobs) == [("collected", 2, 2, None), ("collected", 3, 3, None), ("collected", 3, 3, None)]
    assert tags == list(range(8))  # each request's row index in the run


def test_a_batch_picked_up_for_some_of_its_requests_is_read_whole_into_the_cache(sb, tmp_path):
    db = tmp_path / "restarted.db"
    _run_and_kill(sb, db)  # two pending batches of 4 requests each
    sb.set_batch_delay(0.3)
    pk.cache.configure(path=db, mode="auto")
    one = [{"q": "ticket 2: my parcel never came"}]
    cmp = pk.compare(models(sb), "{q}", one, batch=True)
    assert cmp.status == "finished" and len(cmp.results) == 2 and cmp.results["error"].isna().all()
    assert sb.stats()["batches"] == {"openai": 1, "anthropic": 1}  # picked up, nothing sent again
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 8  # the 6 it did not wait for too
        assert {s for (s,) in conn.execute("SELECT status FROM batch_jobs")} == {"collected"}

    sb.reset_stats()
    pk.cache.configure(path=db, mode="replay")  # so the whole killed run replays with no request
    cases = [{"q": f"ticket {i}: my parcel never came"} for i in range(4)]
    again = pk.compare(models(sb), "{q}", cases)
    assert again.results["error"].isna().all() and sb.stats()["requests"] == 0


def test_a_ledger_of_the_earlier_format_is_migrated_and_its_batches_resumed(sb, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    db = tmp_path / "old.db"
    (m,) = models(sb, "openai:gpt-4.1-mini")
    reqs = [m.request(f"question {i}") for i in range(3)]
    keys = [pk.cache.request_key(r.key_dict()) for r in reqs]
    client = openai.OpenAI(base_url=sb.openai_base_url, api_key=KEY, max_retries=0)
    lines = "".join(json.dumps(OpenAIBatches().line(m, r, k)) + "\n" for r, k in zip(reqs, keys, strict=True))
    upload = client.files.create(file=("in.jsonl", lines.encode()), purpose="batch")
    sent = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")

    # The file as the earlier ledger left it: every request (and error) inside its job's state, and batch_keys.
    pk.cache.Cache(db, "auto").close()
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE IF EXISTS batch_requests")
        conn.execute("DROP TABLE IF EXISTS batch_jobs")
        conn.execute("DELETE FROM schema_migrations WHERE name LIKE 'batch_jobs_%'")
        ledger_mod._m_batches(conn)
        conn.execute("INSERT INTO schema_migrations VALUES ('batch_jobs_0001', '2026-11-01T00:00:00Z')")
        base = {"model_id": m.id, "base_url": sb.openai_base_url, "price": None, "submitted": time.time()}
        held = {k: {"request": r.key_dict(), "tags": [i]} for i, (k, r) in enumerate(zip(keys, reqs, strict=True))}
        pending = {**base, "ids": {"id": sent.id, "input_file_id": upload.id}, "requests": held}
        failed = {**base, "ids": {"id": "batch_gone"}, "requests": {"k-failed": {"request": reqs[0].key_dict(),
                                                                                 "tags": [3]}},
                  "errors": {"k-failed": {"kind": "server", "status": 500, "message": "the batch failed it"}}}
        conn.execute("INSERT INTO batch_jobs VALUES (?, 'old-run', 'openai', ?, '2026-11-01T00:00:00Z',"
                     " 'submitted', ?)", (sent.id, m.spec, json.dumps(pending)))
        conn.execute("INSERT INTO batch_jobs VALUES ('batch_gone', 'old-run', 'openai', ?, '2026-11-01T00:00:01Z',"
                     " 'collected', ?)", (m.spec, json.dumps(failed)))
        conn.executemany("INSERT INTO batch_keys VALUES (?, ?)", [(k, sent.id) for k in keys])

    cache = pk.cache.Cache(db, "auto")
    try:
        outcomes = {o.call.tag: o for o in _aio.run_sync(batch_mod.resume_run("old-run", cache))}
    finally:
        cache.close()
    assert sorted(outcomes) == [0, 1, 2, 3]
    assert all(outcomes[i].response is not None and outcomes[i].response.text for i in range(3))
    assert outcomes[3].error is not None and outcomes[3].error.kind == "server"
    assert "the batch failed it" in str(outcomes[3].error)
    assert sb.stats()["batches"] == {"openai": 1}  # the one the test sent, read and not sent again
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        states = [json.loads(s) for (s,) in conn.execute("SELECT state FROM batch_jobs ORDER BY created_at")]
        rows = conn.execute("SELECT COUNT(*), COUNT(error) FROM batch_requests").fetchone()
    assert "batch_keys" not in tables and "batch_requests" in tables
    assert [s["size"] for s in states] == [3, 1] and not any("requests" in s or "errors" in s for s in states)
    assert rows == (4, 1)
