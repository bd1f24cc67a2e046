"""Pure tables of a comparison's results: the per-model summary, per-case samples, paired differences.

Functions of DataFrames only (no Comparison, no I/O), so the Comparison, the report and
the widget all compute the same numbers the same way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from protokit.comparisons import stats
from protokit.errors import ConfigError

__all__ = ["CANDIDATE_SEP", "X_AXES", "PairedComparison", "candidate_name", "pair", "pareto", "per_case",
           "score_column", "summarize", "summarize_samples", "x_column"]

# A candidate is a (model, prompt variant) pair; its name joins the two, e.g. "openai:gpt-4.1-mini · short".
# Without prompt variants a candidate is its model, named by the model id alone.
CANDIDATE_SEP = " · "


def candidate_name(model: str, prompt: str | None) -> str:
    """The name of a (model, prompt variant) candidate: the model id, then `` · `` and the variant's name."""
    return model if prompt is None else f"{model}{CANDIDATE_SEP}{prompt}"


@dataclass(frozen=True, kw_only=True)
class PairedComparison(stats.PairedResult):
    """Candidate ``a`` minus candidate ``b`` on one score, over the cases both have a score for.

    ``p_value`` comes from a paired sign-flip permutation test (exact up to 16
    cases); ``low``-``high`` is a 95% bootstrap interval of the mean difference.
    """

    a: str
    b: str
    score: str
    method: str = "paired sign-flip permutation test"

    @property
    def significant(self) -> bool:
        """True when p < 0.05."""
        return not math.isnan(self.p_value) and self.p_value < 0.05

    def __str__(self) -> str:
        if self.n == 0:
            return f"{self.a} and {self.b} share no scored cases on {self.score}"
        verdict = "significant" if self.significant else "not significant"
        return (f"{self.a} - {self.b} on {self.score}: {self.diff:+.3f} (95% CI {self.low:+.3f} to "
                f"{self.high:+.3f}) over {self.n} cases; {verdict} (p = {self.p_value:.2g}, {self.method})")


def _sum(values: pd.Series) -> float:
    """Sum, or NaN when any value is missing (an unknown price makes the total unknown)."""
    if len(values) == 0:
        return 0.0
    numeric = pd.to_numeric(values, errors="coerce")
    return math.nan if numeric.isna().any() else float(numeric.sum())


def summarize(results: pd.DataFrame, models: Sequence[str], score_names: Sequence[str], *,
              samples: int = 1, seed: int = 0, prompts: Sequence[str] = ()) -> pd.DataFrame:
    """One row per model (in the given order): counts, score means with 95% bootstrap intervals, cost.

    With prompt variants (``prompts``), one row per candidate instead, model by model and within
    a model variant by variant: ``candidate``, ``model`` and ``prompt`` come first.

    A score's mean is over cases: each case's mean over its samples and, with turns, its turns.
    With streamed calls (any ``ttft_s``), ``ttft_p50`` and ``ttft_p95`` follow the latency.
    """
    rows = []
    key = "candidate" if prompts else "model"
    groups = dict(iter(results.groupby(key, sort=False))) if len(results) else {}
    rated = "rating" in results and results["rating"].notna().any()
    judged = "judge_cost_usd" in results
    streamed = "ttft_s" in results and results["ttft_s"].notna().any()
    pairs = [(m, p) for m in models for p in prompts] if prompts else [(m, None) for m in models]
    for model, prompt in pairs:
        name = candidate_name(model, prompt)
        g = groups.get(name, results.iloc[0:0])
        failed = g["error"].notna()
        ok = g[~failed]
        n = len(g)
        head: dict[str, Any] = {"candidate": name, "model": model, "prompt": prompt} if prompts else {"model": model}
        row: dict[str, Any] = {
            **head, "n": n, "cases": int(g["case"].nunique()), "errors": int(failed.sum()),
            "error_rate": float(failed.mean()) if n else math.nan,
            "scorer_errors": int(g["scorer_error"].notna().sum()),
        }
        for name in score_names:
            col = f"score_{name}"
            # Samples of one case are not independent: average them, then resample cases.
            per_case = pd.to_numeric(g[col], errors="coerce").groupby(g["case"], sort=False).mean()
            mean, lo, hi = stats.bootstrap_ci(per_case.to_numpy(dtype=float), seed=seed)
            row[col], row[f"{col}_lo"], row[f"{col}_hi"] = mean, lo, hi
        latency = pd.to_numeric(ok["latency_s"], errors="coerce").to_numpy(dtype=float)
        row["latency_p50"] = stats.percentile(latency, 50)
        row["latency_p95"] = stats.percentile(latency, 95)
        if streamed:
            ttft = pd.to_numeric(ok["ttft_s"], errors="coerce").dropna().to_numpy(dtype=float)
            row["ttft_p50"] = stats.percentile(ttft, 50)
            row["ttft_p95"] = stats.percentile(ttft, 95)
        row["input_tokens"] = int(pd.to_numeric(ok["input_tokens"], errors="coerce").fillna(0).sum())
        row["output_tokens"] = int(pd.to_numeric(ok["output_tokens"], errors="coerce").fillna(0).sum())
        cost = _sum(ok["cost_usd"])
        ran = int(ok["case"].nunique())
        row["cost_usd"] = cost
        row["cost_per_case"] = cost / ran if ran else math.nan
        row["cached"] = int((ok["cached"] == True).sum())  # noqa: E712 - object column with None
        if judged:
            row["judge_cost_usd"] = _sum(g["judge_cost_usd"].dropna()) if g["judge_cost_usd"].notna().any() \
                else 0.0
        if samples > 1:
            row["distinct_outputs"] = float(ok.groupby("case", sort=False)["output"].nunique().mean()) \
                if len(ok) else math.nan
        if rated:
            ratings = pd.to_numeric(g["rating"], errors="coerce")
            row["rating"] = float(ratings.mean()) if ratings.notna().any() else math.nan
            row["rating_n"] = int(ratings.notna().sum())
        rows.append(row)
    return pd.DataFrame(rows)


def summarize_samples(results: pd.DataFrame, score_names: Sequence[str], key: str = "model") -> pd.DataFrame:
    """One row per case x model (x candidate, ``key``; x turn with turns): samples, errors, distinct outputs,
    agreement, scores."""
    keys = ["case", key, *(["turn"] if "turn" in results else [])]
    by = results.groupby(keys, sort=False)
    out = by.size().rename("samples").to_frame()
    out["errors"] = by["error"].count()
    ok = results[results["error"].isna()]
    counts = ok.groupby([*keys, "output"], sort=False).size()
    levels = list(range(len(keys)))
    top = counts.groupby(level=levels, sort=False).max()
    answered = counts.groupby(level=levels, sort=False).sum()
    out["distinct_outputs"] = counts.groupby(level=levels, sort=False).size()
    out["agreement"] = top / answered
    out["distinct_outputs"] = out["distinct_outputs"].fillna(0).astype(int)
    for name in score_names:
        out[f"score_{name}"] = pd.to_numeric(results[f"score_{name}"], errors="coerce").groupby(
            [results[k] for k in keys], sort=False).mean()
    return out.reset_index()


def score_column(score: str, score_names: Sequence[str]) -> str:
    """The column of a score: ``score_NAME``, or ``rating`` for human ratings (no scorer of that name)."""
    return "rating" if score == "rating" and score not in score_names else f"score_{score}"


def per_case(results: pd.DataFrame, model: str, column: str, key: str = "model") -> pd.Series:
    """A model's (or candidate's, ``key="candidate"``) value of ``column`` per case, the mean over samples."""
    rows = results[results[key] == model]
    col = pd.to_numeric(rows[column], errors="coerce")
    return col.groupby(rows["case"], sort=False).mean()


def pair(results: pd.DataFrame, a: str, b: str, score: str, column: str, key: str = "model") -> PairedComparison:
    """Candidate ``a`` minus ``b`` on ``column`` (score ``score``) over the cases both have a value for."""
    sa, sb = per_case(results, a, column, key), per_case(results, b, column, key)
    joined = pd.concat([sa.rename("a"), sb.rename("b")], axis=1, join="inner").dropna()
    r = stats.paired_difference(joined["a"].to_numpy(), joined["b"].to_numpy())
    return PairedComparison(**dataclasses.asdict(r), a=a, b=b, score=score)


# An x axis (plot, pareto): its summary column and its label.
X_AXES = {"cost": ("cost_per_case", "cost per case (USD)"), "latency": ("latency_p50", "median latency (s)"),
          "ttft": ("ttft_p50", "median time to first token (s)")}


def x_column(by: str, summary: pd.DataFrame | None = None) -> str:
    """The summary column of a cost, latency or time-to-first-token axis (``ttft`` needs streamed calls)."""
    if by not in X_AXES:
        raise ConfigError(f"by/x must be 'cost', 'latency' or 'ttft', got {by!r}")
    column = X_AXES[by][0]
    if summary is not None and column not in summary:
        raise ConfigError("no time to first token was measured: it needs streamed calls; run the comparison "
                          "with stream=True (the Compare widget streams)")
    return column


def pareto(summary: pd.DataFrame, column: str, by: str = "cost", key: str = "model") -> list[str]:
    """Models (candidates) that no other beats on both ``column`` and cost (or latency), cheapest first."""
    xcol = x_column(by, summary)
    return stats.pareto_front([(m, float(q), float(x)) for m, q, x in
                               zip(summary[key], summary[column], summary[xcol], strict=True)])
