"""Summaries, the plain-language verdict, the quality/cost chart and the HTML export of a Comparison."""

from __future__ import annotations

import html
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from protokit import stats

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from protokit.comparison import Comparison

__all__ = ["figure", "html_page", "html_summary", "recommend", "summarize", "summarize_samples", "verdict"]

SMALL_N = 30  # below this many cases, a "not significant" says little: the report says so
_ERROR_WORDS = {"not_run_budget": "not run (budget spent)", "cancelled": "cancelled"}


def _sum(values: pd.Series) -> float:
    """Sum, or NaN when any value is missing (an unknown price makes the total unknown)."""
    if len(values) == 0:
        return 0.0
    numeric = pd.to_numeric(values, errors="coerce")
    return math.nan if numeric.isna().any() else float(numeric.sum())


def summarize(results: pd.DataFrame, models: Sequence[str], score_names: Sequence[str], *,
              samples: int = 1, seed: int = 0) -> pd.DataFrame:
    """One row per model (in the given order): counts, score means with 95% bootstrap intervals, cost."""
    rows = []
    groups = dict(iter(results.groupby("model", sort=False))) if len(results) else {}
    rated = "rating" in results and results["rating"].notna().any()
    judged = "judge_cost_usd" in results
    for model in models:
        g = groups.get(model, results.iloc[0:0])
        failed = g["error"].notna()
        ok = g[~failed]
        n = len(g)
        row: dict[str, Any] = {
            "model": model, "n": n, "cases": int(g["case"].nunique()), "errors": int(failed.sum()),
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


def summarize_samples(results: pd.DataFrame, score_names: Sequence[str]) -> pd.DataFrame:
    """One row per case x model: samples, errors, distinct outputs, agreement (top answer's share), scores."""
    keys = ["case", "model"]
    by = results.groupby(keys, sort=False)
    out = by.size().rename("samples").to_frame()
    out["errors"] = by["error"].count()
    ok = results[results["error"].isna()]
    counts = ok.groupby([*keys, "output"], sort=False).size()
    top = counts.groupby(level=[0, 1], sort=False).max()
    answered = counts.groupby(level=[0, 1], sort=False).sum()
    out["distinct_outputs"] = counts.groupby(level=[0, 1], sort=False).size()
    out["agreement"] = top / answered
    out["distinct_outputs"] = out["distinct_outputs"].fillna(0).astype(int)
    for name in score_names:
        out[f"score_{name}"] = pd.to_numeric(results[f"score_{name}"], errors="coerce").groupby(
            [results["case"], results["model"]], sort=False).mean()
    return out.reset_index()


def _money(x: float) -> str:
    if math.isnan(x):
        return "unknown cost"
    return f"${x:,.2f}" if x >= 1 else f"${x:.3g}"


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 and not (math.isnan(a) or math.isnan(b)) else math.nan


def _key(row: pd.Series, col: str) -> tuple[float, float, float]:
    cost = row["cost_per_case"]
    lat = row["latency_p50"]
    return (-row[col], math.inf if math.isnan(cost) else cost, math.inf if math.isnan(lat) else lat)


def recommend(cmp: Comparison, score: str) -> tuple[str, str]:
    """``(model, why)``: the top scorer, unless a cheaper model is as good within the noise.

    A cheaper model is preferred when its paired difference to the leader is not
    significant (p >= 0.05) and its mean lies inside the leader's 95% interval.
    """
    s = cmp.summary.set_index("model", drop=False)
    col = cmp._summary_score(score)
    scored = s[s[col].notna()]
    if scored.empty:
        from protokit.errors import ConfigError

        raise ConfigError(f"no model has a score for {score}: every call failed or no output was scored")
    ranked = sorted(scored.index, key=lambda m: _key(scored.loc[m], col))
    leader = ranked[0]
    cost = scored.loc[leader, "cost_per_case"]
    cheaper = sorted((m for m in ranked[1:] if scored.loc[m, "cost_per_case"] < cost),
                     key=lambda m: scored.loc[m, "cost_per_case"])
    # "Good enough" needs both: not significantly worse, and inside the leader's own 95%
    # interval, so a tiny sample (where nothing is significant) does not crown the cheapest.
    floor = scored.loc[leader, f"{col}_lo"] if col != "rating" else scored.loc[leader, col]
    for alt in cheaper:
        pair = cmp.compare_pair(leader, alt, score)
        if pair.n and not pair.significant and scored.loc[alt, col] >= floor:
            times = _ratio(cost, scored.loc[alt, "cost_per_case"])
            return alt, (f"it is as good as {leader} within the noise here (p = {pair.p_value:.2g}) and "
                         f"{times:.1f}x cheaper per case")
    if len(ranked) == 1:
        return leader, "it is the only model scored"
    pair = cmp.compare_pair(leader, ranked[1], score)
    if pair.significant:
        return leader, f"it scores significantly higher than {ranked[1]} (p = {pair.p_value:.2g})"
    return leader, "it scores highest and no cheaper model comes close enough"


def _interval(s: pd.Series, col: str) -> str:
    return f"{s[col]:.2f} ({s[col + '_lo']:.2f}-{s[col + '_hi']:.2f})" if col != "rating" else f"{s[col]:.2f}"


def verdict(cmp: Comparison, score: str | None) -> str:
    """The plain-language report: the headline comparison, the recommendation, then caveats."""
    s = cmp.summary.set_index("model", drop=False)
    lines: list[str] = []
    if score is not None:
        col = cmp._summary_score(score)
        scored = s[s[col].notna()]
        if scored.empty:
            lines.append(f"No output could be scored on {score}: see the error and scorer_error columns.")
        else:
            best, why = recommend(cmp, score)
            ranked = sorted(scored.index, key=lambda m: _key(scored.loc[m], col))
            leader = ranked[0]
            if len(ranked) == 1:
                r = scored.loc[leader]
                lines.append(f"{leader} scores {_interval(r, col)} on {score} over {r['cases']} cases "
                             f"at {_money(r['cost_per_case'])} per case.")
            else:
                other = best if best != leader else ranked[1]
                a, b = scored.loc[leader], scored.loc[other]
                pair = cmp.compare_pair(leader, other, score)
                times = _ratio(a["cost_per_case"], b["cost_per_case"])
                cost_txt = ""
                if not math.isnan(times):
                    cost_txt = f" at {times:.2g}x the cost per case" if times >= 1 \
                        else f" at {1 / times:.2g}x lower cost per case"
                sig = "significant" if pair.significant else "not significant"
                lines.append(
                    f"{leader} scores {_interval(a, col)} on {score} against {_interval(b, col)} for {other}"
                    f"{cost_txt}; on {pair.n} cases the difference ({pair.diff:+.2f}) is {sig} "
                    f"(p = {pair.p_value:.2g}).")
                if pair.n < SMALL_N and not pair.significant:
                    lines.append(f"With only {pair.n} cases a real difference can hide in the noise; "
                                 "add cases before deciding on quality alone.")
            lines.append(f"Use {best}: {why}.")
    else:
        lines.append("No scorers were given, so quality is not compared; add scorers= or rate outputs.")
    for m, r in s.iterrows():
        if r["errors"]:
            kinds = cmp.results.loc[(cmp.results["model"] == m) & cmp.results["error"].notna(), "error"]
            parts = ", ".join(f"{_ERROR_WORDS.get(k, k)}: {n}" for k, n in kinds.value_counts().items())
            lines.append(f"{m}: {r['errors']} of {r['n']} calls did not answer ({parts}); "
                         "they are left out of its scores.")
        if r["scorer_errors"]:
            lines.append(f"{m}: {r['scorer_errors']} outputs could not be scored (see scorer_error).")
        if math.isnan(r["cost_usd"]):
            lines.append(f"Cost unknown for {m}: set pk.set_price({m!r}, input=..., output=...) "
                         "(USD per 1M tokens).")
    lat = [f"{m} {r['latency_p50']:.2f} s" for m, r in s.iterrows() if not math.isnan(r["latency_p50"])]
    if lat:
        lines.append("Median latency: " + ", ".join(lat) + ".")
    return "\n".join(lines)


def figure(cmp: Comparison, score: str, x: str) -> Figure:
    """Score (with its interval) against cost per case or median latency; the Pareto front is marked."""
    from matplotlib.figure import Figure

    s = cmp.summary
    col = cmp._summary_score(score)
    xcol = "cost_per_case" if x == "cost" else "latency_p50"
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    placed = s[s[col].notna() & s[xcol].notna()]
    front = set(cmp.pareto(score, by=x))
    for _, r in placed.iterrows():
        yerr = None
        if col != "rating":
            yerr = np.array([[r[col] - r[f"{col}_lo"]], [r[f"{col}_hi"] - r[col]]])
        on = r["model"] in front
        ax.errorbar([r[xcol]], [r[col]], yerr=yerr, fmt="o", capsize=4, markersize=8 if on else 6,
                    color="tab:blue" if on else "tab:gray")
        ax.annotate(str(r["model"]), (r[xcol], r[col]), xytext=(6, 4), textcoords="offset points", fontsize=8)
    line = placed[placed["model"].isin(front)].sort_values(xcol)
    if len(line) > 1:
        ax.plot(line[xcol], line[col], "--", color="tab:blue", linewidth=1, label="Pareto front")
        ax.legend(loc="lower right", fontsize=8)
    xs = placed[xcol]
    if len(xs) > 1 and xs.min() > 0 and xs.max() / xs.min() > 30:
        ax.set_xscale("log")  # prices span orders of magnitude; a linear axis would crush the cheap ones
    ax.set_xlabel("cost per case (USD)" if x == "cost" else "median latency (s)")
    ax.set_ylabel(score)
    missing = sorted(set(s["model"]) - set(placed["model"]))
    title = f"{score} vs {'cost' if x == 'cost' else 'latency'}"
    if missing:
        title += f" (not shown, {x} or score unknown: {', '.join(missing)})"
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    return fig


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.find("<svg"):]


def html_summary(cmp: Comparison) -> str:
    """The verdict and the summary table, for a notebook's rich display."""
    report = html.escape(cmp.report())
    return (f"<div><p><b>{html.escape(repr(cmp))}</b></p><pre style='white-space:pre-wrap'>{report}</pre>"
            f"{cmp.summary.to_html(index=False, float_format=lambda v: f'{v:.4g}', na_rep='')}</div>")


def html_page(cmp: Comparison, *, max_rows: int | None = 1000) -> str:
    """A standalone HTML page: verdict, summary, the chart as inline SVG, and the result rows."""
    chart = _svg(cmp.plot()) if cmp.score_names else ""
    shown = cmp.results if max_rows is None else cmp.results.head(max_rows)
    results = shown.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}")
    if len(shown) < len(cmp.results):
        results = (f"<p>The first {len(shown)} of {len(cmp.results)} rows; to_csv() writes them all.</p>"
                   + results)
    title = html.escape(f"protokit comparison {cmp.run_id or ''}".strip())
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>" + title + "</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;"
            "font-size:12px}td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top}</style></head>"
            f"<body><h1>{title}</h1>{html_summary(cmp)}{chart}<h2>Results</h2>{results}</body></html>\n")
