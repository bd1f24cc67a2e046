"""pk.compare end to end against the sandbox: results, summary, samples, estimates, budgets, runs, bad input."""

from __future__ import annotations

import asyncio
import json

import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.figure import Figure

import protokit as pk
from protokit.cli.runs import command as runs_cli
from protokit.comparisons import list_runs
from protokit.models.prices import DEFAULT_OUTPUT_TOKENS
from protokit.sandbox import Sandbox

CASES = [
    {"ticket": "refund please", "expected": "refund please"},
    {"ticket": "app crashes", "expected": "app crashes"},
    {"ticket": "hello", "expected": "goodbye"},
    {"ticket": "reset password", "expected": "reset password"},
]


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    """A cache of our own in tmp_path, no provider variables, no price overrides leaking in."""
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "PROTOKIT_PRICES"):
        monkeypatch.delenv(var, raising=False)
    pk.cache.configure(path=tmp_path / "c.db", mode="auto")


def echo(sb, name="echo", **kw):
    return pk.model(f"openai:{name}", base_url=sb.openai_base_url, api_key="sandbox-key", **kw)


def claude(sb, name="other"):
    return pk.model(f"anthropic:{name}", base_url=sb.anthropic_base_url, api_key="sandbox-key")


def test_results_summary_and_verdict(sandbox):
    pk.set_price("openai:echo", input=1.0, output=2.0)
    pk.set_price("anthropic:other", input=10.0, output=20.0)
    cmp = pk.compare([echo(sandbox), claude(sandbox)], "{ticket}", CASES, [pk.scorers.exact("expected")])
    r = cmp.results
    assert list(r.columns) == [
        "case", "ticket", "expected", "model", "sample", "output", "latency_s", "ttft_s", "input_tokens",
        "output_tokens", "cost_usd", "cached", "finish_reason", "secret_shaped", "error", "error_status",
        "error_message",
        "attempts", "served_by", "price_date", "score_exact", "reason_exact", "scorer_error", "rating"]
    assert len(r) == 8 and sandbox.stats()["requests"] == 8
    echo_rows = r[r["model"] == "openai:echo"]
    assert echo_rows["output"].tolist() == [c["ticket"] for c in CASES]
    assert echo_rows["score_exact"].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert echo_rows["reason_exact"].iloc[2] == "expected 'goodbye', got 'hello'"
    assert cmp.models == ["openai:echo", "anthropic:other"] and cmp.score_names == ["exact"]
    assert cmp.cases["case"].tolist() == [0, 1, 2, 3]
    s = cmp.summary.set_index("model")
    assert {"n", "errors", "error_rate", "score_exact", "score_exact_lo", "score_exact_hi", "latency_p50",
            "latency_p95", "cost_usd", "cost_per_case", "input_tokens", "output_tokens"} <= set(s.columns)
    assert s.loc["openai:echo", "score_exact"] == 0.75 and s.loc["anthropic:other", "score_exact"] == 0.0
    assert s.loc["openai:echo", "cost_usd"] == pytest.approx(echo_rows["cost_usd"].sum())
    assert cmp.best() == "openai:echo"
    assert cmp.pareto() == ["openai:echo"]
    text = cmp.report()
    assert text.startswith("openai:echo scores 0.75") and "anthropic:other" in text and "Use openai:echo" in text
    fig = cmp.plot(x="latency")
    assert isinstance(fig, Figure) and fig.axes[0].get_xlabel() == "median latency (s)"
    assert "<svg" in cmp.to_html() and "Use openai:echo" in cmp.to_html()
    assert cmp.to_csv().splitlines()[0].startswith("case,ticket,expected,model")


def test_errors_are_classified_per_row(sandbox):
    sandbox.set_faults("400=1.0", seed=0)
    cmp = pk.compare([echo(sandbox)], "{ticket}", CASES[:2], [pk.scorers.exact("expected")])
    row = cmp.results.iloc[0]
    assert (row["error"], row["error_status"], row["output"]) == ("bad_request", 400, "")
    assert pd.isna(row["score_exact"]) and "400" not in str(row["scorer_error"])
    assert cmp.summary.loc[0, "errors"] == 2
    assert "2 of 2 calls did not answer (bad_request: 2)" in cmp.report()


def test_scorer_errors_and_bad_return_types_do_not_crash(sandbox):
    def boom(output, case):
        raise KeyError("missing")

    cmp = pk.compare([echo(sandbox)], "{ticket}", CASES[:2],
                     [boom, pk.scorers.custom(lambda o, c: "great", name="wordy"), pk.scorers.exact("expected")])
    row = cmp.results.iloc[0]
    assert row["scorer_error"].startswith("boom: KeyError")
    assert "scorer 'wordy' returned str" in row["scorer_error"]
    assert row["score_exact"] == 1.0 and pd.isna(row["score_boom"])
    assert cmp.summary.loc[0, "scorer_errors"] == 2


def test_samples_keep_n_entries_and_top_up(sandbox):
    m = echo(sandbox)
    cmp = pk.compare([m], "{ticket}", CASES, samples=3)
    assert len(cmp.results) == 12 and sorted(set(cmp.results["sample"])) == [0, 1, 2]
    assert pk.cache.get_cache().stats()["entries"] == 12
    assert cmp.summary.loc[0, "distinct_outputs"] == 1.0
    ss = cmp.samples_summary
    assert list(ss.columns[:6]) == ["case", "model", "samples", "errors", "distinct_outputs", "agreement"]
    assert (ss["samples"] == 3).all() and (ss["agreement"] == 1.0).all()
    sandbox.reset_stats()
    more = pk.compare([m], "{ticket}", CASES, samples=4)
    assert sandbox.stats()["requests"] == 4  # only sample 3 of each case was new
    assert more.results["cached"].sum() == 12


def test_estimate_counts_calls_cache_and_cost(sandbox):
    m = echo(sandbox, "estimated")
    est = pk.estimate([m], "{ticket}", CASES, samples=2)
    assert (est.calls, est.cached, est.to_run) == (8, 0, 8)
    assert est.cost_usd is None and est.unknown_price == ["openai:estimated"]
    assert "no price for openai:estimated" in str(est)
    with pytest.warns(UserWarning, match="no price known for openai:estimated"):
        pk.compare([m], "{ticket}", CASES[:2])
    pk.set_price("openai:estimated", input=1_000_000.0, output=0.0)  # $1 per input token
    est = pk.estimate([m], "{ticket}", CASES, samples=2, options={"max_tokens": 7}, budget_usd=1.0)
    assert (est.calls, est.cached) == (8, 0)  # max_tokens changes the request: nothing cached
    est = pk.estimate([m], "{ticket}", CASES, samples=2, budget_usd=1.0)
    assert (est.calls, est.cached, est.to_run) == (8, 2, 6)
    # Input is chars/4 rounded up per call: "reset password" (14 chars) -> 4 tokens, etc.
    per_case = {c["ticket"]: -(-len(c["ticket"]) // 4) for c in CASES}
    expected_in = sum(per_case.values()) * 2 - per_case["refund please"] - per_case["app crashes"]
    assert est.input_tokens == expected_in and est.cost_usd == pytest.approx(expected_in)
    assert est.output_tokens == 6 * DEFAULT_OUTPUT_TOKENS
    assert est.over_budget and "over the $1 budget" in str(est)
    assert sandbox.stats()["requests"] == 2  # estimates never call


def test_budget_stops_issuing_calls(sandbox):
    pk.set_price("openai:priced", input=100_000.0, output=100_000.0)  # about $0.3-0.5 a call
    cases = [{"ticket": f"case number {i}"} for i in range(12)]
    # max_tokens bounds each answer, so the reservation before a call is an upper bound of its cost.
    cmp = pk.compare([echo(sandbox, "priced", max_tokens=3)], "{ticket}", cases, concurrency=1, budget_usd=1.0)
    ran = cmp.results[cmp.results["error"].isna()]
    assert 1 <= len(ran) < 12
    assert set(cmp.results["error"].dropna()) == {"not_run_budget"}
    assert sandbox.stats()["requests"] == len(ran)
    assert "not run (budget spent)" in cmp.report()


def test_runs_are_stored_and_reloaded(sandbox, tmp_path):
    cmp = pk.compare([echo(sandbox), claude(sandbox)], "Ticket: {ticket}", CASES,
                     [pk.scorers.exact("expected"), pk.scorers.similarity("expected")],
                     options={"temperature": 0})
    assert cmp.run_id
    loaded = pk.load_run(cmp.run_id[:17])
    pd.testing.assert_frame_equal(loaded.results, cmp.results, check_dtype=False)
    pd.testing.assert_frame_equal(loaded.summary, cmp.summary)
    assert loaded.models == cmp.models and loaded.prompt == "Ticket: {ticket}"
    assert loaded.score_names == ["exact", "f1"] and loaded.options["options"] == {"temperature": 0}
    assert loaded.cases["ticket"].tolist() == [c["ticket"] for c in CASES]
    cmp.add_rating(2, "openai:echo", 4)
    assert cmp.results.loc[(cmp.results["case"] == 2) & (cmp.results["model"] == "openai:echo"),
                           "rating"].item() == 4.0
    assert cmp.summary.set_index("model").loc["openai:echo", "rating"] == 4.0
    again = pk.load_run(cmp.run_id)
    assert again.results["rating"].notna().sum() == 1
    with pytest.raises(pk.ConfigError, match="no result"):
        cmp.add_rating(99, "openai:echo", 1)

    runs = list_runs()
    assert runs[0]["id"] == cmp.run_id and runs[0]["n"] == 8 and runs[0]["status"] == "finished"
    path = str(pk.cache.get_cache().path)
    out = CliRunner().invoke(runs_cli, ["--path", path])
    assert out.exit_code == 0 and cmp.run_id in out.output and "openai:echo, anthropic:other" in out.output
    out = CliRunner().invoke(runs_cli, ["show", cmp.run_id, "--path", path, "--csv", str(tmp_path / "r.csv")])
    assert out.exit_code == 0, out.output
    assert "Use openai:echo" in out.output and "score_exact" in out.output
    assert len(pd.read_csv(tmp_path / "r.csv")) == 8
    out = CliRunner().invoke(runs_cli, ["--path", path, "--json"])
    assert json.loads(out.output)[0]["id"] == cmp.run_id
    with pytest.raises(pk.ConfigError, match="no stored run"):
        pk.load_run("nope")


def test_cache_off_keeps_no_run(sandbox, tmp_path):
    pk.cache.configure(path=tmp_path / "off.db", mode="off")
    cmp = pk.compare([echo(sandbox)], "{ticket}", CASES[:1])
    assert cmp.run_id is None and not (tmp_path / "off.db").exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"cases": []}, "no cases"),
    ({"prompt": "Classify {ticket} as {label}"}, r"uses \{label\}.*add the column"),
    ({"models": "dup"}, "appears twice"),
    ({"scorers": [pk.scorers.exact("answer")]}, "reads column 'answer'"),
    ({"scorers": [pk.scorers.exact("expected"), pk.scorers.contains("expected", name="exact")]}, "two scorers"),
    ({"samples": 0}, "samples must be a positive integer"),
    ({"options": {"temperature": 9}}, "temperature=9"),
    ({"cases": [{"ticket": "x", "output": "y"}]}, "clashes with a results column"),
    ({"prompt": "{}"}, "positional"),
    ({"cases": "missing.csv"}, "does not exist"),
])
def test_bad_input_fails_before_any_call(sandbox, kwargs, message):
    args = {"models": [echo(sandbox)], "prompt": "{ticket}", "cases": CASES,
            "scorers": [pk.scorers.exact("expected")], **kwargs}
    if args["models"] == "dup":
        args["models"] = [echo(sandbox), echo(sandbox)]
    with pytest.raises(pk.ConfigError, match=message):
        pk.compare(**args)
    with pytest.raises(pk.ConfigError, match=message):
        pk.estimate(**args)
    assert sandbox.stats()["requests"] == 0


def test_case_sources_and_prompt_forms(sandbox, tmp_path):
    pd.DataFrame(CASES).to_csv(tmp_path / "cases.csv", index=False)
    (tmp_path / "cases.jsonl").write_text("\n".join(json.dumps({"id": f"t{i}", **c}) for i, c in enumerate(CASES)))
    m = echo(sandbox)
    from_csv = pk.compare([m], "{ticket}", tmp_path / "cases.csv", [pk.scorers.exact("expected")])
    assert from_csv.results["score_exact"].tolist() == [1.0, 1.0, 0.0, 1.0]
    from_jsonl = pk.compare([m], lambda case: [{"role": "user", "content": case["ticket"].upper()}],
                            str(tmp_path / "cases.jsonl"), system="Be brief.")
    assert from_jsonl.results["case"].tolist() == ["t0", "t1", "t2", "t3"]
    assert from_jsonl.results["output"].iloc[0] == "REFUND PLEASE"
    messages = [{"role": "system", "content": "Classify."}, {"role": "user", "content": "T: {ticket}"}]
    assert pk.compare([m], messages, pd.DataFrame(CASES)).results["output"].iloc[1] == "T: app crashes"


def test_judge_in_compare_counts_its_cost_separately(sandbox, tmp_path):
    script = tmp_path / "judge.yaml"
    script.write_text('models:\n  grader:\n    rules:\n      - match: "<<<\\\\s*refund"\n'
                      '        reply: "SCORE: 1\\nREASON: on topic"\n      - reply: "SCORE: 0\\nREASON: off"\n')
    with Sandbox(port=0, script=script) as jsb:
        grader = pk.model("openai:grader", base_url=jsb.openai_base_url, api_key="k")
        pk.set_price("openai:grader", input=2.0, output=2.0)
        pk.set_price("openai:echo", input=1.0, output=1.0)
        judge = pk.scorers.judge(grader, "Is it about {expected}?")
        cmp = pk.compare([echo(sandbox)], "{ticket}", CASES, [judge])
    r = cmp.results
    assert r["score_judge"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert r["reason_judge"].tolist()[:2] == ["on topic", "off"]
    assert (r["judge_cost_usd"] > 0).all() and "judge_cost_usd" in r.columns
    s = cmp.summary.iloc[0]
    assert s["judge_cost_usd"] == pytest.approx(r["judge_cost_usd"].sum())
    assert s["cost_usd"] == pytest.approx(r["cost_usd"].sum())  # model cost does not include the judge
    assert pk.estimate([echo(sandbox)], "{ticket}", CASES, [judge]).judge_calls == 4


def test_sync_compare_inside_a_running_loop_and_acompare(sandbox):
    m = echo(sandbox)

    async def notebook_cell():
        inner = pk.compare([m], "{ticket}", CASES)  # as in Jupyter: a loop is already running
        outer = await pk.acompare([m], "{ticket}", CASES, [pk.scorers.exact("expected")])
        return inner, outer

    inner, outer = asyncio.run(notebook_cell())
    assert inner.results["output"].tolist() == outer.results["output"].tolist()
    assert outer.results["cached"].all()


def test_on_result_rows_match_results_and_cancel_keeps_finished_rows():
    pk.cache.configure(mode="off")
    seen, runners = [], []

    def on_start(runner):
        runners.append(runner)

    def on_result(row, progress):
        seen.append(dict(row))
        assert progress.total == 40
        if len(seen) == 3:
            runners[0].cancel()

    cases = [{"ticket": f"t{i}", "expected": f"t{i}"} for i in range(40)]
    with Sandbox(port=0, latency=0.05) as sb:
        cmp = pk.compare([echo(sb)], "{ticket}", cases, [pk.scorers.exact("expected")], concurrency=2,
                         on_result=on_result, on_start=on_start)
        requests = sb.stats()["requests"]
    r = cmp.results
    assert len(r) == 40 and len(seen) == 40
    done = r[r["error"].isna()]
    assert 3 <= len(done) <= 6 and requests <= 6
    assert set(r["error"].dropna()) == {"cancelled"}
    by_key = {(row["case"], row["sample"]): row for row in seen}
    for _, row in r.iterrows():
        got = by_key[(row["case"], row["sample"])]
        assert list(got) == list(r.columns)
        for col in r.columns:  # None in the dict is NaN in the frame
            assert got[col] == row[col] or (pd.isna(got[col]) and pd.isna(row[col])), col
    assert cmp.status == "cancelled"


def test_judge_calls_count_toward_the_budget(sandbox):
    graded = []

    def grader(prompt):
        graded.append(prompt)
        return {"text": "SCORE: 1\nREASON: fine", "input_tokens": 3, "output_tokens": 2}

    # Input is free and output costs $100,000 per million: a grading's 2 output tokens cost $0.20,
    # exactly what it reserves before it is sent (max_tokens=2). $0.50 holds two gradings; a third
    # would cross the budget, so it is not sent.
    judge = pk.scorers.judge(pk.model(grader, name="grader", price={"input": 0.0, "output": 100_000.0},
                                      max_tokens=2), "Is the answer fine?")
    pk.set_price("openai:free", input=0.0, output=0.0)
    cases = [{"ticket": f"case number {i}"} for i in range(10)]
    cmp = pk.compare([echo(sandbox, "free")], "{ticket}", cases, [judge], concurrency=1, budget_usd=0.5)
    assert len(graded) == 2
    assert cmp.results["judge_cost_usd"].sum() == pytest.approx(0.4)
    not_graded = cmp.results["scorer_error"].dropna()
    assert len(not_graded) + len(graded) == 10
    assert all("not run (budget spent)" in e for e in not_graded)
