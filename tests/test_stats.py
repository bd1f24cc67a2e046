"""Statistics against hand-computed values: bootstrap intervals, sign-flip p-values, Pareto fronts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from protokit.comparisons import Comparison, stats


def test_bootstrap_interval_brackets_a_known_mean():
    values = [0.0, 1.0] * 50  # mean 0.5, standard error 0.05
    mean, lo, hi = stats.bootstrap_ci(values, seed=0)
    assert mean == 0.5
    # The normal-theory interval is 0.5 +/- 0.098; a 2,000-resample percentile bootstrap lands close.
    assert 0.38 < lo < 0.43 and 0.57 < hi < 0.62
    assert stats.bootstrap_ci(values, seed=0) == (mean, lo, hi)  # seeded: identical every time


def test_bootstrap_degenerate_inputs():
    assert stats.bootstrap_ci([0.25, 0.25, 0.25]) == (0.25, 0.25, 0.25)
    assert stats.bootstrap_ci([0.3]) == (0.3, 0.3, 0.3)
    assert all(math.isnan(v) for v in stats.bootstrap_ci([]))
    assert stats.bootstrap_ci([1.0, float("nan"), 0.0])[0] == 0.5  # NaNs are left out


def test_bootstrap_of_many_values_is_blocked_and_sane():
    rng = np.random.default_rng(1)
    values = rng.random(20_000)
    mean, lo, hi = stats.bootstrap_ci(values, n_boot=200)
    assert lo < mean < hi and hi - lo < 0.02


def test_sign_flip_exact_on_a_hand_worked_example():
    # Differences 1, 2, 3, -1 (sum 5). Of the 16 sign patterns, |sum| >= 5 for: all kept (7),
    # flip the first 1 (5), flip the last 1 (5), and the three mirror images (-7, -5, -5): 6/16.
    assert stats.sign_flip_p_value([1, 2, 3, -1]) == pytest.approx(6 / 16)
    # Five equal differences: only "all +" and "all -" reach |sum| = 5: 2/32.
    assert stats.sign_flip_p_value([1, 1, 1, 1, 1]) == pytest.approx(2 / 32)
    assert stats.sign_flip_p_value([0, 0, 0]) == 1.0
    assert stats.sign_flip_p_value([]) == 1.0


def test_sign_flip_monte_carlo_and_normal_regimes():
    # 30 equal differences: no random pattern reaches the observed sum, so p = 1/(n_perm + 1).
    assert stats.sign_flip_p_value([1.0] * 30) == pytest.approx(1 / 10_001)
    balanced = [1.0, -1.0] * 20
    assert stats.sign_flip_p_value(balanced) == 1.0
    # Normal regime: z = |sum| / sqrt(sum d^2) = 100 / sqrt(3000) = 1.826 -> p = 0.0679.
    d = [1.0] * 1550 + [-1.0] * 1450
    assert stats.sign_flip_p_value(d) == pytest.approx(math.erfc(100 / math.sqrt(3000) / math.sqrt(2)))
    assert stats.sign_flip_p_value(d) == pytest.approx(0.0679, abs=1e-3)


def test_paired_difference_drops_incomplete_pairs():
    r = stats.paired_difference([1, 1, 0, float("nan")], [0, 1, 0, 1])
    assert r.n == 3
    assert r.diff == pytest.approx(1 / 3)
    assert (r.mean_a, r.mean_b) == (pytest.approx(2 / 3), pytest.approx(1 / 3))
    assert r.p_value == 1.0  # one nonzero difference: flipping it gives the same |sum|
    assert r.low <= r.diff <= r.high


def test_pareto_front_on_hand_made_points():
    points = [
        ("a", 0.90, 3.0),
        ("b", 0.85, 1.0),
        ("c", 0.80, 2.0),  # dominated by b (worse and dearer)
        ("d", 0.95, 5.0),
        ("e", 0.70, 0.5),
        ("f", 0.90, 4.0),  # dominated by a (same quality, dearer)
        ("g", float("nan"), 0.1),  # cannot be placed
    ]
    assert stats.pareto_front(points) == ["e", "b", "a", "d"]
    assert stats.pareto_front([("x", 0.5, 1.0), ("y", 0.5, 1.0)]) == ["x", "y"]  # ties dominate neither


def test_percentile():
    assert stats.percentile([1, 2, 3, 4], 50) == 2.5
    assert math.isnan(stats.percentile([], 95))


def _hand_comparison() -> Comparison:
    # Three models, eight cases, two samples each; cost and latency chosen by hand.
    spec = {"cheap": (0.001, 0.2, [1, 0, 1, 0, 1, 0, 1, 0]), "mid": (0.002, 0.5, [1, 1, 1, 0, 1, 1, 1, 0]),
            "dear": (0.010, 0.4, [1, 1, 1, 1, 1, 1, 1, 0])}
    rows = []
    for model, (cost, latency, scores) in spec.items():
        for case, score in enumerate(scores):
            for sample in range(2):
                rows.append({"case": case, "model": model, "sample": sample, "output": "x",
                             "latency_s": latency, "input_tokens": 1, "output_tokens": 1, "cost_usd": cost,
                             "cached": False, "error": None, "scorer_error": None, "score_q": float(score),
                             "rating": None})
    return Comparison(results=pd.DataFrame(rows), models=list(spec), cases=pd.DataFrame({"case": range(8)}),
                      prompt="{x}", scorers=[], score_names=["q"], run_id=None, options={"samples": 2})


def test_comparison_statistics_on_a_hand_made_frame():
    cmp = _hand_comparison()
    s = cmp.summary.set_index("model")
    assert s.loc["cheap", "score_q"] == 0.5 and s.loc["dear", "score_q"] == 0.875
    assert s.loc["mid", "cost_per_case"] == pytest.approx(0.004)  # two samples of $0.002 per case
    assert s.loc["dear", "latency_p50"] == 0.4
    assert cmp.pareto("q", by="cost") == ["cheap", "mid", "dear"]
    assert cmp.pareto("q", by="latency") == ["cheap", "dear"]  # mid is slower than dear and worse
    pair = cmp.compare_pair("dear", "cheap", "q")
    # Differences 0,1,0,1,0,1,0,0: three nonzero, so 2 of their 8 sign patterns reach |sum| = 3.
    assert (pair.n, pair.diff, pair.p_value) == (8, 0.375, 0.25)
    assert not pair.significant and "not significant" in str(pair)
    lo = cmp.summary.set_index("model").loc["dear", "score_q_lo"]
    assert 0.5 < lo <= 0.75  # cheap (0.5) is outside dear's interval, mid (0.75) inside
    # dear scores highest; mid is not significantly worse, inside dear's interval and cheaper: use mid.
    assert cmp.best("q") == "mid"
    assert "Use mid" in cmp.report("q")
