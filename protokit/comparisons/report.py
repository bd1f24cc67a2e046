"""The plain-language verdict, the quality/cost chart and the HTML export, rendered from finished tables.

Everything here reads a :class:`ReportData` (the results and summary tables, the score
names and a function giving paired differences), never a Comparison: data flows one way,
from the comparison's tables into text, a figure or a page.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from protokit._extras import LAB_INSTALL, lab_missing, require_lab
from protokit.comparisons.tables import X_AXES, PairedComparison, pareto, score_column
from protokit.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ReportData", "figure", "html_page", "html_summary", "recommend", "verdict"]

SMALL_N = 30  # below this many cases, a "not significant" says little: the report says so
_ERROR_WORDS = {"not_run_budget": "not run (budget spent)", "cancelled": "cancelled"}


@dataclass(frozen=True)
class ReportData:
    """What a report is rendered from: finished tables and a source of paired differences."""

    results: pd.DataFrame
    summary: pd.DataFrame
    score_names: Sequence[str]
    pair: Callable[[str, str, str], PairedComparison]  # (a, b, score) -> a minus b on shared cases
    title: str
    run_id: str | None = None
    key: str = "model"  # the column naming what is compared: "model", or "candidate" with prompt variants

    @property
    def default_score(self) -> str | None:
        """The score a report is about when none is named: the first one, if any."""
        return self.score_names[0] if self.score_names else None

    @property
    def noun(self) -> str:
        """What the report calls one of the things compared: a model, or a candidate (model and prompt)."""
        return "candidate" if self.key == "candidate" else "model"

    def column(self, score: str) -> str:
        """The summary column of a score (``rating`` for human ratings without a scorer of that name)."""
        return score_column(score, self.score_names)


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


def recommend(data: ReportData, score: str) -> tuple[str, str]:
    """``(model, why)``: the top scorer, unless a cheaper model is as good within the noise (models are
    candidates, ``model · variant``, with prompt variants).

    A cheaper model is preferred when its paired difference to the leader is not
    significant (p >= 0.05) and its mean lies inside the leader's 95% interval.
    """
    s = data.summary.set_index(data.key, drop=False)
    col = data.column(score)
    scored = s[s[col].notna()]
    if scored.empty:
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
        pair = data.pair(leader, alt, score)
        if pair.n and not pair.significant and scored.loc[alt, col] >= floor:
            times = _ratio(cost, scored.loc[alt, "cost_per_case"])
            return alt, (f"it is as good as {leader} within the noise here (p = {pair.p_value:.2g}) and "
                         f"{times:.1f}x cheaper per case")
    if len(ranked) == 1:
        return leader, f"it is the only {data.noun} scored"
    pair = data.pair(leader, ranked[1], score)
    if pair.significant:
        return leader, f"it scores significantly higher than {ranked[1]} (p = {pair.p_value:.2g})"
    return leader, f"it scores highest and no cheaper {data.noun} comes close enough"


def _interval(s: pd.Series, col: str) -> str:
    return f"{s[col]:.2f} ({s[col + '_lo']:.2f}-{s[col + '_hi']:.2f})" if col != "rating" else f"{s[col]:.2f}"


def verdict(data: ReportData, score: str | None) -> str:
    """The plain-language report: the headline comparison, the recommendation, then caveats."""
    s = data.summary.set_index(data.key, drop=False)
    lines: list[str] = []
    if score is not None:
        col = data.column(score)
        scored = s[s[col].notna()]
        if scored.empty:
            lines.append(f"No output could be scored on {score}: see the error and scorer_error columns.")
        else:
            best, why = recommend(data, score)
            ranked = sorted(scored.index, key=lambda m: _key(scored.loc[m], col))
            leader = ranked[0]
            if len(ranked) == 1:
                r = scored.loc[leader]
                lines.append(f"{leader} scores {_interval(r, col)} on {score} over {r['cases']} cases "
                             f"at {_money(r['cost_per_case'])} per case.")
            else:
                other = best if best != leader else ranked[1]
                a, b = scored.loc[leader], scored.loc[other]
                pair = data.pair(leader, other, score)
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
            kinds = data.results.loc[(data.results[data.key] == m) & data.results["error"].notna(), "error"]
            parts = ", ".join(f"{_ERROR_WORDS.get(k, k)}: {n}" for k, n in kinds.value_counts().items())
            lines.append(f"{m}: {r['errors']} of {r['n']} calls did not answer ({parts}); "
                         "they are left out of its scores.")
        if r["scorer_errors"]:
            lines.append(f"{m}: {r['scorer_errors']} outputs could not be scored (see scorer_error).")
        if math.isnan(r["cost_usd"]):
            lines.append(f"Cost unknown for {m}: set pk.set_price({r['model']!r}, input=..., output=...) "
                         "(USD per 1M tokens).")
    lat = [f"{m} {r['latency_p50']:.2f} s" for m, r in s.iterrows() if not math.isnan(r["latency_p50"])]
    if lat:
        lines.append("Median latency: " + ", ".join(lat) + ".")
    return "\n".join(lines)


def figure(data: ReportData, score: str, x: str) -> Figure:
    """Score (with its interval) against cost per case, median latency or time to first token; Pareto front marked."""
    require_lab("Comparison.plot()", "matplotlib")
    from matplotlib.figure import Figure

    s = data.summary
    col = data.column(score)
    xcol, xlabel = X_AXES[x]
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    placed = s[s[col].notna() & s[xcol].notna()]
    front = set(pareto(s, col, by=x, key=data.key))
    for _, r in placed.iterrows():
        yerr = None
        if col != "rating":
            yerr = np.array([[r[col] - r[f"{col}_lo"]], [r[f"{col}_hi"] - r[col]]])
        on = r[data.key] in front
        ax.errorbar([r[xcol]], [r[col]], yerr=yerr, fmt="o", capsize=4, markersize=8 if on else 6,
                    color="tab:blue" if on else "tab:gray")
        # parse_math=False: a "$" in a name is text, not the start of a formula that may not parse.
        ax.annotate(str(r[data.key]), (r[xcol], r[col]), xytext=(6, 4), textcoords="offset points", fontsize=8,
                    parse_math=False)
    line = placed[placed[data.key].isin(front)].sort_values(xcol)
    if len(line) > 1:
        ax.plot(line[xcol], line[col], "--", color="tab:blue", linewidth=1, label="Pareto front")
        ax.legend(loc="lower right", fontsize=8)
    xs = placed[xcol]
    if len(xs) > 1 and xs.min() > 0 and xs.max() / xs.min() > 30:
        ax.set_xscale("log")  # prices span orders of magnitude; a linear axis would crush the cheap ones
    ax.set_xlabel(xlabel)
    ax.set_ylabel(score)
    missing = sorted(set(s[data.key]) - set(placed[data.key]))
    title = f"{score} vs {'time to first token' if x == 'ttft' else x}"
    if missing:
        title += f" (not shown, {x} or score unknown: {', '.join(missing)})"
    ax.set_title(title, fontsize=10, parse_math=False)
    ax.grid(True, alpha=0.3)
    return fig


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.find("<svg"):]


def html_summary(data: ReportData) -> str:
    """The verdict and the summary table, for a notebook's rich display."""
    report = html.escape(verdict(data, data.default_score))
    return (f"<div><p><b>{html.escape(data.title)}</b></p><pre style='white-space:pre-wrap'>{report}</pre>"
            f"{data.summary.to_html(index=False, float_format=lambda v: f'{v:.4g}', na_rep='')}</div>")


def html_page(data: ReportData, *, max_rows: int | None = 1000) -> str:
    """A standalone HTML page: verdict, summary, the chart as inline SVG, and the result rows."""
    chart = ""
    if data.default_score is not None:
        # Without matplotlib (a runtime-only install) the page is whole but for the chart.
        chart = (f"<p>No chart: matplotlib is not installed ({LAB_INSTALL}).</p>" if lab_missing("matplotlib")
                 else _svg(figure(data, data.default_score, "cost")))
    shown = data.results if max_rows is None else data.results.head(max_rows)
    results = shown.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}")
    if len(shown) < len(data.results):
        results = (f"<p>The first {len(shown)} of {len(data.results)} rows; to_csv() writes them all.</p>"
                   + results)
    title = html.escape(f"protokit comparison {data.run_id or ''}".strip())
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>" + title + "</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;"
            "font-size:12px}td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top}</style></head>"
            f"<body><h1>{title}</h1>{html_summary(data)}{chart}<h2>Results</h2>{results}</body></html>\n")
