"""compare(batch=True) through the real openai and anthropic SDKs against the sandbox's batch APIs:
answers, batch prices, the cache, per-request faults, cancelling, and resuming after the process is killed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import anthropic
import openai
import pandas as pd
import pytest
from _cli import cli

import protokit as pk
from protokit import _aio
from protokit.models import prices

KEY = "sandbox-key"
CASES = [{"q": f"ticket {i}: my parcel never came", "label": f"ticket {i}: my parcel never came"} for i in range(4)]


def models(sb, *names: str) -> list[pk.Model]:
    out = []
    for spec in names or ("openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5"):
        url = sb.openai_base_url if spec.startswith("openai:") else sb.anthropic_base_url
        out.append(pk.model(spec, base_url=url, api_key=KEY))
    return out


def batch_usd(spec: str, tin: int, tout: int) -> float:
    p = prices.batch_price(spec)
    assert p is not None
    return (tin * p["input"] + tout * p["output"]) / 1_000_000


def test_both_providers_end_to_end_at_batch_price_and_replayed_without_network(sb, capsys):
    ms = [*models(sb), pk.model(lambda text: text.upper(), name="upper")]
    cmp = pk.compare(ms, "{q}", CASES, scorers=[pk.scorers.exact("label")], samples=2, batch=True)
    r = cmp.results
    assert cmp.status == "finished" and len(r) == 4 * 3 * 2 and r["error"].isna().all()
    stats = sb.stats()
    # One batch per provider, every request in it once; the callable ran as usual.
    assert stats["batches"] == {"openai": 1, "anthropic": 1}
    assert stats["by_api"] == {"openai_batch": 8, "anthropic_batch": 8} and stats["requests"] == 16
    served = r[r["model"] != ms[2].id]
    assert (served["output"].str.len() > 0).all() and not served["cached"].any()
    for spec in ("openai:gpt-4.1-mini", "anthropic:claude-haiku-4-5"):
        rows = r[r["model"] == spec]
        expected = [batch_usd(spec, i, o) for i, o in zip(rows["input_tokens"], rows["output_tokens"], strict=True)]
        assert rows["cost_usd"].tolist() == pytest.approx(expected)
        assert rows["price_date"].str.endswith(" batch").all()
    assert "batch [" in capsys.readouterr().err  # the text progress bar

    # Answers are in the cache under the keys of the same calls without a batch: no network at all.
    sb.reset_stats()
    again = pk.compare(ms, "{q}", CASES, scorers=[pk.scorers.exact("label")], samples=2)
    assert sb.stats()["requests"] == 0 and sb.stats()["batches"] == {}
    assert again.results[again.results["model"] != ms[2].id]["cached"].all()
    cols = ["case", "model", "sample", "output", "input_tokens", "output_tokens", "cost_usd", "score_exact"]
    assert again.results[cols].equals(r[cols])

    # The same calls without a batch (another cache): the same answers, at twice the price.
    pk.cache.configure(path=Path(pk.cache.get_cache().path).with_name("live.db"), mode="auto")
    live = pk.compare(ms, "{q}", CASES, samples=2)
    assert live.results["output"].tolist() == r["output"].tolist()
    served_live = live.results[live.results["model"] != ms[2].id]
    assert served_live["cost_usd"].tolist() == pytest.approx((served["cost_usd"] * 2).tolist())


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.mark.parametrize("spec", ["openai:echo", "anthropic:echo"])
def test_batched_answers_equal_live_answers_with_tools_and_schema(sb, spec):
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
              "additionalProperties": False}
    cases = [{"q": 'tool:get_weather {"city": "Oslo"}'}, {"q": "plain words"}]
    runs = {}
    for batch in (True, False):
        pk.cache.configure(path=Path(pk.cache.get_cache().path).with_name(f"{batch}.db"), mode="auto")
        with_tools = pk.compare(models(sb, spec), "{q}", cases, tools=[get_weather], batch=batch).results
        with_schema = pk.compare(models(sb, spec), "{q}", [{"q": '{"text": "plain words"}'}, {"q": "not json"}],
                                 schema=schema, batch=batch).results
        runs[batch] = (with_tools, with_schema)
    for batched, live in zip(runs[True], runs[False], strict=True):
        cols = [c for c in ("output", "tool_calls", "parsed", "input_tokens", "output_tokens", "finish_reason", "error")
                if c in live]
        assert batched[cols].equals(live[cols])
    assert runs[True][0]["tool_calls"][0] == [{"name": "get_weather", "arguments": {"city": "Oslo"}}]
    assert runs[True][1]["parsed"][0] == {"text": "plain words"}
    if spec == "openai:echo":  # an answer that does not match is that row's schema error, in a batch too
        assert runs[True][1]["error"][1] == "schema" and runs[True][1]["output"][1] == "not json"


def test_per_request_faults_are_classified_per_row_and_only_those_are_sent_again(sb):
    sb.set_faults("400=0.3,500=0.2,timeout=0.2", seed=3)
    cases = [{"q": f"question {i}"} for i in range(12)]
    cmp = pk.compare(models(sb, "openai:gpt-4.1-mini"), "{q}", cases, batch=True)
    r = cmp.results
    by_status = sb.stats()["by_status"]
    kinds = r["error"].fillna("ok").value_counts().to_dict()
    assert kinds == {k: v for k, v in {"ok": by_status.get("200", 0), "bad_request": by_status.get("400", 0),
                                       "server": by_status.get("500", 0),
                                       "timeout": by_status.get("expired", 0)}.items() if v}
    assert len(kinds) == 4, kinds  # this seed draws every kind
    assert (r.loc[r["error"] == "bad_request", "error_status"] == 400).all()
    assert (r.loc[r["error"] == "server", "error_status"] == 500).all()
    assert r.loc[r["error"] == "timeout", "error_message"].str.contains("24 h window").all()
    assert (r.loc[r["error"].isna(), "output"].str.len() > 0).all()

    # Failed requests were not cached: the next run sends those, and only those, in a new batch.
    sb.set_faults(None)
    sb.reset_stats()
    again = pk.compare(models(sb, "openai:gpt-4.1-mini"), "{q}", cases, batch=True).results
    assert again["error"].isna().all()
    assert sb.stats()["batches"] == {"openai": 1} and sb.stats()["requests"] == int(r["error"].notna().sum())


def test_anthropic_per_request_fault_classified(sb):
    sb.set_faults("429=1")
    r = pk.compare(models(sb, "anthropic:claude-haiku-4-5"), "{q}", CASES[:2], batch=True).results
    assert r["error"].tolist() == ["rate_limit", "rate_limit"] and r["error_status"].tolist() == [429, 429]


def _openai_batches(sb) -> list:
    return openai.OpenAI(base_url=sb.openai_base_url, api_key=KEY, max_retries=0).batches.list().data


def test_cancel_cancels_the_batch_at_the_provider(sb):
    sb.set_batch_delay(30)

    def on_start(runner):
        threading.Timer(0.4, runner.cancel).start()

    started = time.monotonic()
    cmp = pk.compare(models(sb, "openai:gpt-4.1-mini"), "{q}", CASES, batch=True, on_start=on_start)
    assert time.monotonic() - started < 5
    assert cmp.status == "cancelled" and (cmp.results["error"] == "cancelled").all()
    newest = _openai_batches(sb)[0]
    assert newest.status == "cancelled" and newest.metadata == {"protokit_run": cmp.run_id}


def test_ctrl_c_cancels_the_batch_at_the_provider(sb):
    sb.set_batch_delay(30)
    db = pk.cache.get_cache().path
    # What run_sync does on KeyboardInterrupt: cancel the coroutine on the background loop.
    future = asyncio.run_coroutine_threadsafe(
        pk.acompare(models(sb, "anthropic:claude-haiku-4-5"), "{q}", CASES, batch=True), _aio.background_loop())
    deadline = time.monotonic() + 10
    while not sb.stats()["batches"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)
    future.cancel()
    jobs: list = []
    deadline = time.monotonic() + 5
    while not jobs or jobs[0][1] != "cancelled":
        assert time.monotonic() < deadline, jobs
        time.sleep(0.05)
        with sqlite3.connect(db) as conn:
            jobs = conn.execute("SELECT id, status FROM batch_jobs").fetchall()
    client = anthropic.Anthropic(base_url=sb.anthropic_base_url, api_key=KEY, max_retries=0)
    assert client.messages.batches.retrieve(jobs[0][0]).cancel_initiated_at is not None


def test_a_server_without_a_batch_api_says_so_per_row(sb):
    m = pk.model("openai:echo", base_url=sb.url + "/elsewhere/v1", api_key=KEY)
    r = pk.compare([m], "{q}", CASES[:2], batch=True).results
    assert r["error"].tolist() == ["bad_request"] * 2
    assert r["error_message"].str.contains("has no batch API").all() and r["error_message"].str.contains(
        "batch=False").all()


@pytest.mark.parametrize("stream", [{"stream": True}, {"on_chunk": lambda cell, text: None}])
def test_batch_and_streaming_together_is_one_clear_error_before_any_request(sb, stream):
    with pytest.raises(pk.ConfigError, match="batch=True cannot stream"):
        pk.compare(models(sb, "openai:gpt-4.1-mini"), "{q}", CASES, batch=True, **stream)
    assert sb.stats()["requests"] == 0 and sb.stats()["batches"] == {}


def test_a_request_that_cannot_be_asked_is_its_rows_error_and_the_batch_goes_on(sb):
    r = pk.compare(models(sb, "anthropic:claude-haiku-4-5"), "{q}", [{"q": ""}, {"q": "fine"}], batch=True).results
    assert r["error"].tolist()[0] == "config" and "message 0 (user) is empty" in r["error_message"].tolist()[0]
    assert pd.isna(r["error"].tolist()[1]) and r["output"].tolist()[1]
    assert sb.stats()["batches"] == {"anthropic": 1}


# Characters str.splitlines() takes for line breaks, and JSON's own escapes: a JSONL line must survive them.
HOSTILE = ["line\u2028sep", "para\u2029sep", "nel\x85x", "vt\x0bff\x0cfs\x1cgs\x1d", "cr\rlf\nend",
           'quote"back\\slash', "ünï\U0001f600"]


def test_hostile_prompts_go_through_a_batch_whole_and_replay_as_they_came(sb):
    ms = models(sb, "openai:echo", "anthropic:echo")
    r = pk.compare(ms, "{q}", [{"q": h} for h in HOSTILE], batch=True).results
    assert r["error"].isna().all(), r["error_message"].dropna().tolist()
    assert r["output"].tolist() == [h for h in HOSTILE for _ in ms]  # echo: each answer is its prompt, exactly
    sb.reset_stats()
    again = pk.compare(ms, "{q}", [{"q": h} for h in HOSTILE]).results  # no batch: the cache answers
    assert again["output"].tolist() == r["output"].tolist() and sb.stats()["requests"] == 0


def test_budget_holds_batch_calls_back(sb):
    r = pk.compare(models(sb, "openai:gpt-4.1-mini"), "{q}", CASES, batch=True, budget_usd=0.0).results
    assert (r["error"] == "not_run_budget").all() and sb.stats()["batches"] == {}


def test_estimate_prices_batched_calls_at_the_batch_price(sb):
    kw = {"models": [*models(sb), pk.model(lambda t: t, name="same")], "prompt": "{q}", "cases": CASES}
    live, batched = pk.estimate(**kw), pk.estimate(**kw, batch=True)
    assert batched.cost_usd == pytest.approx(live.cost_usd / 2) and batched.batched == 8
    assert "8 calls in provider batches (batch price" in str(batched)
    assert [e["batched"] for e in batched.by_model] == [4, 4, 0]
    with pytest.raises(pk.ConfigError, match="batch must be True or False"):
        pk.estimate(**kw, batch="yes")


# -- a run killed while its batches are pending ---------------------------------------------------------------

_KILLED = textwrap.dedent("""
    import sys, protokit as pk
    openai_url, anthropic_url, scorers = sys.argv[1:4]
    cases = [{"q": f"ticket {i}: my parcel never came", "label": f"ticket {i}: my parcel never came"}
             for i in range(4)]
    models = [pk.model("openai:gpt-4.1-mini", base_url=openai_url),
              pk.model("anthropic:claude-haiku-4-5", base_url=anthropic_url)]

    def shouted(output):  # the user's own scorer: a stored run cannot make it again
        return output.isupper()

    pk.compare(models, "{q}", cases, scorers=eval(scorers), batch=True)
    print("finished: the batches should still have been pending")
""")


def _run_and_kill(sb, db: Path, scorers: str = "[]") -> str:
    """Start compare(batch=True) in a process (with ``scorers``, Python source), SIGKILL it once both batches
    are in the run store; the run id."""
    sb.set_batch_delay(60)
    env = {**os.environ, "PROTOKIT_CACHE": str(db), "PROTOKIT_CACHE_MODE": "auto", "OPENAI_API_KEY": KEY,
           "ANTHROPIC_API_KEY": KEY}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED, sb.openai_base_url, sb.anthropic_base_url, scorers],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        jobs: list = []
        while len(jobs) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the batches never reached the run store"
            time.sleep(0.05)
            if db.exists():
                with sqlite3.connect(db) as conn:
                    try:
                        jobs = conn.execute("SELECT run_id, status FROM batch_jobs").fetchall()
                    except sqlite3.OperationalError:  # not created yet
                        jobs = []
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert {s for _, s in jobs} == {"submitted"} and sb.stats()["batches"] == {"openai": 1, "anthropic": 1}
    return str(jobs[0][0])


def test_protokit_runs_resume_finishes_a_killed_run_without_sending_again(sb, tmp_path, monkeypatch):
    db = tmp_path / "killed.db"
    run_id = _run_and_kill(sb, db)
    code, out = cli("runs", "--path", str(db), "--json")
    assert code == 0 and json.loads(out)[0]["status"] == "interrupted" and json.loads(out)[0]["n"] == 0

    sb.set_batch_delay(0.3)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    code, out = cli("runs", "resume", run_id[:12], "--path", str(db))
    assert code == 0, out
    assert f"run {run_id} (finished): 8/8 rows, 0 errors" in out
    assert sb.stats()["batches"] == {"openai": 1, "anthropic": 1}  # picked up, never sent again

    run = pk.load_run(run_id, path=db)
    r = run.results
    assert run.status == "finished" and len(r) == 8 and r["error"].isna().all()
    assert sorted(r["model"].unique()) == ["anthropic:claude-haiku-4-5", "openai:gpt-4.1-mini"]
    assert (r["output"].str.len() > 0).all()
    for spec, rows in r.groupby("model"):
        expected = [batch_usd(str(spec), i, o) for i, o in zip(rows["input_tokens"], rows["output_tokens"],
                                                               strict=True)]
        assert rows["cost_usd"].tolist() == pytest.approx(expected)

    # The answers are in that cache: the same compare replays them with no request at all.
    sb.reset_stats()
    pk.cache.configure(path=db, mode="replay")
    again = pk.compare(models(sb), "{q}", [{"q": c["q"]} for c in CASES])
    assert again.results["output"].tolist() == r["output"].tolist() and sb.stats()["requests"] == 0

    code, out = cli("runs", "resume", run_id, "--path", str(db))  # nothing pending: the rows again, from the cache
    assert code == 0 and "8/8 rows" in out and sb.stats()["requests"] == 0


def test_two_processes_waiting_on_one_batch_both_finish(sb, tmp_path):
    """A shell resume and the same compare re-run in the notebook wait on one pending batch. The resume
    reads it first and deletes what it left at the provider; the notebook's run then finishes from the
    cache and the ledger instead of failing to read files that are gone."""
    db = tmp_path / "twice.db"
    run_id = _run_and_kill(sb, db)
    pk.cache.configure(path=db, mode="auto")
    paused, go = threading.Event(), threading.Event()

    def on_batch(progress) -> None:  # the notebook's run stops here, having seen its batches still running
        if not paused.is_set():
            paused.set()
            go.wait(120)

    found: dict = {}
    notebook = threading.Thread(target=lambda: found.update(cmp=pk.compare(
        models(sb), "{q}", [{"q": c["q"]} for c in CASES], batch=True, on_batch=on_batch)))
    notebook.start()
    try:
        assert paused.wait(60), "the notebook's compare never polled"
        sb.set_batch_delay(0.3)
        env = {**os.environ, "OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": KEY}
        shell = subprocess.run([sys.executable, "-c", "import sys; from protokit.cli.main import main; "
                                "main(sys.argv[1:])", "runs", "resume", run_id, "--path", str(db)],
                               env=env, capture_output=True, text=True, timeout=120)
        assert shell.returncode == 0 and "8/8 rows, 0 errors" in shell.stdout, shell.stdout + shell.stderr
    finally:
        go.set()
        notebook.join(60)
    r = found["cmp"].results
    assert r["error"].isna().all(), r["error_message"].tolist()
    assert r["output"].tolist() == pk.load_run(run_id, path=db).results["output"].tolist()
    assert sb.stats()["batches"] == {"openai": 1, "anthropic": 1}  # never sent again


# A judge named by its spec (rebuilt from the run store) whose echoed template carries its verdict.
_BUILT_INS = ('[pk.scorers.exact("label"), pk.scorers.contains("label", name="mentions"), '
              'pk.scorers.judge("openai:echo", "about a parcel?", template="SCORE: 4\\nREASON: {rubric} {output}", '
              'scale=(1, 5))]')


def _resume(sb, monkeypatch, db: Path, run_id: str) -> tuple[int, str]:
    sb.set_batch_delay(0.3)
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.setenv(name, KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", sb.openai_base_url)  # where the judge's spec is served
    return cli("runs", "resume", run_id, "--path", str(db))


def _replayed(sb, db: Path, scorers: list) -> pd.DataFrame:
    """The same compare run again in the notebook: every answer replayed from the run's cache file."""
    pk.cache.configure(path=db, mode="replay")
    sb.reset_stats()
    cases = [{"q": c["q"], "label": c["label"]} for c in CASES]
    again = pk.compare(models(sb), "{q}", cases, scorers=scorers)
    assert sb.stats()["requests"] == 0
    return again.results


def test_resume_scores_the_rows_with_the_runs_built_in_scorers(sb, tmp_path, monkeypatch):
    db = tmp_path / "scored.db"
    run_id = _run_and_kill(sb, db, _BUILT_INS)
    code, out = _resume(sb, monkeypatch, db, run_id)
    assert code == 0 and "8/8 rows, 0 errors" in out and "not applied" not in out, out

    r = pk.load_run(run_id, path=db).results
    assert r["scorer_error"].isna().all(), r["scorer_error"].tolist()
    assert r["score_judge"].tolist() == [0.75] * 8 and r["reason_judge"].str.startswith("about a parcel?").all()
    # Scored as the same compare scores them in the notebook.
    again = _replayed(sb, db, [pk.scorers.exact("label"), pk.scorers.contains("label", name="mentions"),
                               pk.scorers.judge("openai:echo", "about a parcel?", scale=(1, 5),
                                                template="SCORE: 4\nREASON: {rubric} {output}")])
    cols = ["case", "model", "output", "score_exact", "reason_exact", "score_mentions", "score_judge", "reason_judge"]
    assert again[cols].equals(r[cols])


def test_resume_says_in_one_line_which_scorers_it_could_not_apply(sb, tmp_path, monkeypatch):
    db = tmp_path / "unscored.db"
    run_id = _run_and_kill(sb, db, '[pk.scorers.exact("label"), shouted]')
    code, out = _resume(sb, monkeypatch, db, run_id)
    assert code == 0, out
    (line,) = [x for x in out.splitlines() if "not applied" in x]
    assert line == ("scorer shouted not applied to the 8 rows answered now (a stored run cannot rebuild a scorer "
                    "made from your own function or object); to apply it, run the same compare again: its "
                    "answers replay from the cache")
    assert f"run {run_id} (finished): 8/8 rows, 0 errors" in out

    r = pk.load_run(run_id, path=db).results
    assert r["score_exact"].notna().all() and r["score_shouted"].isna().all()
    assert r["scorer_error"].str.startswith("shouted: not applied by `protokit runs resume`").all()

    def shouted(output):
        return output.isupper()

    # What the line says to do: the same compare again scores every row, with no request made.
    again = _replayed(sb, db, [pk.scorers.exact("label"), shouted])
    assert again["score_shouted"].notna().all() and again["score_exact"].tolist() == r["score_exact"].tolist()


def test_running_the_same_compare_again_picks_the_pending_batches_up(sb, tmp_path):
    db = tmp_path / "restarted.db"
    _run_and_kill(sb, db)
    sb.set_batch_delay(0.3)
    pk.cache.configure(path=db, mode="auto")  # a restarted kernel, the same notebook cell
    cmp = pk.compare(models(sb), "{q}", [{"q": c["q"]} for c in CASES], batch=True)
    assert cmp.status == "finished" and len(cmp.results) == 8 and cmp.results["error"].isna().all()
    assert sb.stats()["batches"] == {"openai": 1, "anthropic": 1}
    with sqlite3.connect(db) as conn:
        assert {s for (s,) in conn.execute("SELECT status FROM batch_jobs")} == {"collected"}


def test_resuming_a_finished_run_keeps_its_scored_rows(sb):
    cmp = pk.compare(models(sb, "openai:echo"), "{q}", CASES, scorers=[pk.scorers.exact("label")], batch=True)
    assert cmp.results["score_exact"].tolist() == [1.0] * 4
    code, out = cli("runs", "resume", cmp.run_id, "--path", str(pk.cache.get_cache().path))
    assert code == 0 and "4/4 rows, 0 errors" in out
    again = pk.load_run(cmp.run_id)
    assert again.status == "finished" and again.results["score_exact"].tolist() == [1.0] * 4
    assert again.results["scorer_error"].isna().all() and sb.stats()["batches"] == {"openai": 1}


def test_resume_refuses_a_run_without_batches(sb):
    cmp = pk.compare(models(sb, "openai:gpt-4.1-mini"), "{q}", CASES[:1])
    code, out = cli("runs", "resume", cmp.run_id, "--path", str(pk.cache.get_cache().path))
    assert code == 1 and "sent no batch" in out


# -- the sandbox's batch protocols ----------------------------------------------------------------------------

def test_sandbox_openai_batch_protocol_edges(sb):
    client = openai.OpenAI(base_url=sb.openai_base_url, api_key=KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")
    lines = [{"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]}}
             for i, model in enumerate(["echo", "gpt-sim"])]
    upload = client.files.create(file=("in.jsonl", "\n".join(map(json.dumps, lines)).encode()), purpose="batch")
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "failed" and batch.errors and "one model" in (batch.errors.data or [])[0].message
    assert client.files.content(upload.id).content == "\n".join(map(json.dumps, lines)).encode()


def test_sandbox_anthropic_results_and_counts(sb):
    sb.set_batch_delay(0.4)
    client = anthropic.Anthropic(base_url=sb.anthropic_base_url, api_key=KEY, max_retries=0)
    batch = client.messages.batches.create(requests=[
        {"custom_id": f"r{i}", "params": {"model": "echo", "max_tokens": 20,
                                          "messages": [{"role": "user", "content": f"hi {i}"}]}} for i in range(4)])
    assert batch.processing_status == "in_progress" and batch.results_url is None
    time.sleep(0.25)
    batch = client.messages.batches.cancel(batch.id)
    counts = batch.request_counts
    assert batch.processing_status == "ended" and counts.succeeded == 2 and counts.canceled == 2
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["r0"].type == "succeeded" and results["r0"].message.content[0].text == "hi 0"  # type: ignore[union-attr]
    assert results["r3"].type == "canceled"
