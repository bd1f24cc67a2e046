"""Fault drill: compare against a sandbox that fails a fifth of all requests.

The sandbox injects 10% 429s (with Retry-After), 5% 500s, 3% timeouts, 2%
malformed bodies and 1% connection resets from a fixed seed. Every case x model
must end as exactly one row (an answer or a classified error), retries must
recover at least 99% of the calls, and each echo answer must be its own
prompt's. Default size 200 calls; 1,000 with ``--full-drills`` or
``PROTOKIT_FULL_DRILLS=1``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

import protokit as pk
from protokit.runner import RetryPolicy
from protokit.sandbox import Sandbox

FAULTS = "429=0.1,500=0.05,timeout=0.03,malformed=0.02,reset=0.01"
# With this seed the first 200 draws hold every kind of fault, so even the CI size meets all five.
SEED = 11
MODEL_TIMEOUT = 0.5
# Retry fast: the drill is about what ends where, not about waiting out real backoff.
FAST = RetryPolicy(retries=6, base_delay=0.02, max_delay=0.2)
# What each injected fault must surface as when it is not retried.
KIND_OF_FAULT = {"429": "rate_limit", "500": "server", "malformed": "server", "timeout": "timeout",
                 "reset": "connection"}


@pytest.fixture
def faulty() -> Iterator[Sandbox]:
    """A sandbox of its own with the drill's faults; a timeout fault holds well past the model timeout."""
    with Sandbox(port=0, faults=FAULTS, seed=SEED, timeout_hold=10 * MODEL_TIMEOUT) as sb:
        yield sb


def _models(sb: Sandbox) -> list[pk.models.Model]:
    # Both dialects, so both SDKs' error paths are drilled.
    return [pk.model("openai:echo", base_url=sb.openai_base_url, api_key="k", timeout=MODEL_TIMEOUT),
            pk.model("anthropic:echo", base_url=sb.anthropic_base_url, api_key="k", timeout=MODEL_TIMEOUT)]


def _cases(n: int) -> pd.DataFrame:
    # Distinct texts of varied length, so a mixed-up answer cannot match by accident.
    return pd.DataFrame({"case": [f"c{i:04d}" for i in range(n)],
                         "text": [f"ticket {i}: " + "word " * (i % 7) + f"end {i}" for i in range(n)]})


def _check_one_row_each(results: pd.DataFrame, cases: pd.DataFrame, models: list[str]) -> None:
    assert len(results) == len(cases) * len(models)
    assert not results.duplicated(["case", "model", "sample"]).any()
    got = set(zip(results["case"], results["model"], strict=True))
    assert got == {(c, m) for c in cases["case"] for m in models}
    assert (results["sample"] == 0).all()


@pytest.mark.filterwarnings("ignore::protokit.models.prices.PriceWarning")
def test_retries_recover_every_fault_and_no_row_is_lost_or_mixed_up(faulty: Sandbox, full_drills: bool) -> None:
    models = _models(faulty)
    cases = _cases(500 if full_drills else 100)
    ids = [m.id for m in models]

    cmp = pk.compare(models, "{text}", cases, concurrency=16, retries=FAST)
    res = cmp.results
    stats = faulty.stats()

    _check_one_row_each(res, cases, ids)
    ok = res["error"].isna()
    assert ok.mean() >= 0.99, res.loc[~ok, ["case", "model", "error", "error_message"]].to_string()
    # Anything that did fail is classified and explained, never a bare row.
    failed = res.loc[~ok]
    assert failed["error"].isin(set(KIND_OF_FAULT.values())).all(), failed["error"].tolist()
    assert failed["error_message"].str.len().gt(0).all()
    assert (failed["output"] == "").all()
    # No mix-ups: each echo answer is its own case's prompt.
    text = dict(zip(cases["case"], cases["text"], strict=True))
    assert (res.loc[ok, "output"] == res.loc[ok, "case"].map(text)).all()
    # The drill really met every kind of fault, and retried them.
    for fault in KIND_OF_FAULT:
        assert stats["by_status"].get(fault, 0) > 0, stats
    assert (res["attempts"] > 1).any()
    # Each answer was served once (no call repeated after it succeeded) and recorded once;
    # the attempts the rows report are exactly the requests the server saw.
    assert stats["by_status"]["200"] == ok.sum()
    assert stats["requests"] == res["attempts"].sum()
    assert pk.cache.get_cache().stats()["entries"] == ok.sum()


@pytest.mark.filterwarnings("ignore::protokit.models.prices.PriceWarning")
def test_without_retries_each_fault_is_its_own_classified_row(faulty: Sandbox) -> None:
    models = _models(faulty)
    cases = _cases(100)
    ids = [m.id for m in models]

    res = pk.compare(models, "{text}", cases, concurrency=16, retries=0).results
    stats = faulty.stats()

    _check_one_row_each(res, cases, ids)
    assert (res["attempts"] == 1).all()
    # One request per row, so the error kinds must tally with the faults served.
    expected: dict[str, int] = {}
    for fault, kind in KIND_OF_FAULT.items():
        expected[kind] = expected.get(kind, 0) + stats["by_status"].get(fault, 0)
    got = res["error"].value_counts().to_dict()
    assert got == {k: v for k, v in expected.items() if v}, (got, stats)
    assert sum(got.values()) > 0
    # The status travels with the error where there was one; 500s and 429s are told apart.
    assert (res.loc[res["error"] == "rate_limit", "error_status"] == 429).all()
    assert (res.loc[res["error"] == "server", "error_status"].dropna() == 500).sum() \
        == stats["by_status"].get("500", 0)
    ok = res["error"].isna()
    text = dict(zip(cases["case"], cases["text"], strict=True))
    assert (res.loc[ok, "output"] == res.loc[ok, "case"].map(text)).all()


# A stricter mix than FAULTS (29% of requests fail) for the per-attempt timeout drill.
STRICT_FAULTS = "429=0.1,500=0.08,timeout=0.05,malformed=0.03,reset=0.03"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::protokit.models.prices.PriceWarning")
def test_a_per_attempt_timeout_recovers_hung_attempts_under_the_strict_mix(full_drills: bool) -> None:
    """compare(timeout=T) bounds each attempt: a hang costs T and is retried like a 5xx.

    The models keep the SDKs' own 60 s timeout, so only protokit's per-attempt timeout can
    end a hang. Full size: 600 calls with T = 5 s (the issue's figure); CI size: 200 with T = 1 s.
    """
    per_attempt = 5.0 if full_drills else 1.0
    with Sandbox(port=0, faults=STRICT_FAULTS, seed=SEED, timeout_hold=4 * per_attempt) as sb:
        models = [pk.model("openai:echo", base_url=sb.openai_base_url, api_key="k"),
                  pk.model("anthropic:echo", base_url=sb.anthropic_base_url, api_key="k")]
        cases = _cases(300 if full_drills else 100)
        res = pk.compare(models, "{text}", cases, concurrency=32, timeout=per_attempt,
                         retries=RetryPolicy(retries=6, base_delay=0.02, max_delay=0.2)).results
        stats = sb.stats()
    _check_one_row_each(res, cases, [m.id for m in models])
    ok = res["error"].isna()
    assert ok.mean() >= 0.99, res.loc[~ok, ["case", "model", "error", "error_message"]].to_string()
    assert stats["by_status"].get("timeout", 0) > 0, stats  # hangs happened and were survived
    text = dict(zip(cases["case"], cases["text"], strict=True))
    assert (res.loc[ok, "output"] == res.loc[ok, "case"].map(text)).all()
    assert stats["requests"] == res["attempts"].sum()
