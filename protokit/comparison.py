"""The Comparison: results of one compare run, with its summary, statistics, chart, verdict and exports."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from protokit import stats
from protokit.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from protokit.runs import RunStore
    from protokit.scorers import Scorer

__all__ = ["Comparison", "PairedComparison"]


@dataclass(frozen=True)
class PairedComparison:
    """Model ``a`` minus model ``b`` on one score, over the cases both have a score for.

    ``p_value`` comes from a paired sign-flip permutation test (exact up to 16
    cases); ``low``-``high`` is a 95% bootstrap interval of the mean difference.
    """

    a: str
    b: str
    score: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    p_value: float
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


class Comparison:
    """Results of comparing models on cases: ``results`` (one row per case x model x sample) and more.

    Build one with :func:`protokit.compare` or reload one with :func:`protokit.load_run`.
    """

    def __init__(self, *, results: pd.DataFrame, models: Sequence[str], cases: pd.DataFrame, prompt: Any,
                 scorers: Sequence[Scorer], score_names: Sequence[str], run_id: str | None,
                 options: Mapping[str, Any] | None = None, store: RunStore | None = None,
                 status: str = "finished", scorer_info: Sequence[Mapping[str, Any]] | None = None) -> None:
        self.results = results
        self.models = list(models)
        self.cases = cases
        self.prompt = prompt
        self.scorers = list(scorers)
        self.score_names = list(score_names)
        self.run_id = run_id
        self.options = dict(options or {})
        self.samples = int(self.options.get("samples", 1))
        self.status = status
        self.scorer_info = list(scorer_info) if scorer_info is not None else [s.describe() for s in scorers]
        self._store = store
        self._summary: pd.DataFrame | None = None
        self._pairs: dict[tuple[str, str, str], PairedComparison] = {}

    def __repr__(self) -> str:
        run = f" run {self.run_id}" if self.run_id else ""
        return (f"<Comparison{run}: {len(self.models)} models x {len(self.cases)} cases x {self.samples} "
                f"samples, {len(self.results)} rows, scores: {', '.join(self.score_names) or 'none'}>")

    # -- tables ------------------------------------------------------------------------
    @property
    def summary(self) -> pd.DataFrame:
        """One row per model: n, errors, each score's mean and 95% interval, latency, tokens, cost."""
        if self._summary is None:
            from protokit.report import summarize

            self._summary = summarize(self.results, self.models, self.score_names, samples=self.samples)
        return self._summary

    @property
    def samples_summary(self) -> pd.DataFrame:
        """One row per case x model: samples, errors, distinct outputs, agreement, mean scores."""
        from protokit.report import summarize_samples

        return summarize_samples(self.results, self.score_names)

    # -- statistics --------------------------------------------------------------------
    def _score(self, score: str | None) -> str:
        if score is None:
            if not self.score_names:
                raise ConfigError("this comparison has no scores; add scorers=[pk.scorers.exact('expected')] "
                                  "or rate outputs with add_rating")
            return self.score_names[0]
        name = score.removeprefix("score_")
        if name not in self.score_names and not (name == "rating" and self.results["rating"].notna().any()):
            raise ConfigError(f"no score {score!r}; scores here: {', '.join(self.score_names) or 'none'}")
        return name

    def _column(self, name: str) -> str:
        return "rating" if name == "rating" and name not in self.score_names else f"score_{name}"

    def _model(self, name: str) -> str:
        if name in self.models:
            return name
        found = [m for m in self.models if m.split(":", 1)[-1] == name]
        if len(found) == 1:
            return found[0]
        raise ConfigError(f"no model {name!r} in this comparison; models: {', '.join(self.models)}")

    def per_case(self, model: str, score: str | None = None) -> pd.Series:
        """A model's score per case (the mean over samples), indexed by case id."""
        name = self._score(score)
        rows = self.results[self.results["model"] == self._model(model)]
        col = pd.to_numeric(rows[self._column(name)], errors="coerce")
        return col.groupby(rows["case"], sort=False).mean()

    def compare_pair(self, a: str, b: str, score: str | None = None) -> PairedComparison:
        """Paired difference ``a - b`` on shared cases, its 95% interval and p-value (sign-flip test)."""
        a, b, name = self._model(a), self._model(b), self._score(score)
        key = (a, b, name)
        if key not in self._pairs:
            sa, sb = self.per_case(a, name), self.per_case(b, name)
            joined = pd.concat([sa.rename("a"), sb.rename("b")], axis=1, join="inner").dropna()
            r = stats.paired_difference(joined["a"].to_numpy(), joined["b"].to_numpy())
            self._pairs[key] = PairedComparison(a, b, name, r.n, r.mean_a, r.mean_b, r.diff, r.low, r.high,
                                                r.p_value)
        return self._pairs[key]

    def pareto(self, score: str | None = None, by: str = "cost") -> list[str]:
        """Models that no other model beats on both the score and cost (or latency), cheapest first."""
        name = self._score(score)
        xcol = _x_column(by)
        s = self.summary
        col = self._summary_score(name)
        return stats.pareto_front([(m, float(q), float(c)) for m, q, c in zip(s["model"], s[col], s[xcol],
                                                                              strict=True)])

    def _summary_score(self, name: str) -> str:
        return "rating" if self._column(name) == "rating" else f"score_{name}"

    def best(self, score: str | None = None) -> str:
        """The model to use: the top scorer, or a cheaper one that is not significantly worse."""
        from protokit.report import recommend

        return recommend(self, self._score(score))[0]

    # -- outputs -----------------------------------------------------------------------
    def report(self, score: str | None = None) -> str:
        """A short plain-language verdict: who scores best, at what cost, and whether it is significant."""
        from protokit.report import verdict

        return verdict(self, None if score is None and not self.score_names else self._score(score))

    def plot(self, score: str | None = None, x: str = "cost") -> Figure:
        """Quality against cost per case (or latency p50): error bars and the Pareto front marked."""
        from protokit.report import figure

        name = self._score(score)
        _x_column(x)
        return figure(self, name, x)

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str | None:
        """Write the results as CSV to ``path``, or return the CSV text when no path is given."""
        if path is None:
            return self.results.to_csv(index=False)
        self.results.to_csv(Path(path), index=False)
        return None

    def to_html(self, path: str | os.PathLike[str] | None = None, *, max_rows: int | None = 1000) -> str:
        """A self-contained HTML page: verdict, summary, chart and results; written to ``path`` if given.

        At most ``max_rows`` result rows are included (None for all); ``to_csv`` has every row.
        """
        from protokit.report import html_page

        page = html_page(self, max_rows=max_rows)
        if path is not None:
            Path(path).write_text(page, encoding="utf-8")
        return page

    def _repr_html_(self) -> str:
        from protokit.report import html_summary

        return html_summary(self)

    # -- human ratings -----------------------------------------------------------------
    def add_rating(self, case: Any, model: str, rating: float | int | bool | None, sample: int = 0) -> None:
        """Record a human rating for one output (``None`` clears it); kept with the stored run."""
        if rating is not None and not isinstance(rating, (int, float)):
            raise ConfigError(f"a rating must be a number or a bool, got {type(rating).__name__}")
        value = None if rating is None else float(rating)
        model = self._model(model)
        r = self.results
        hit = r.index[(r["case"] == case) & (r["model"] == model) & (r["sample"] == sample)]
        if len(hit) == 0:
            raise ConfigError(f"no result for case {case!r}, model {model}, sample {sample}")
        idx = hit[0]
        r.at[idx, "rating"] = value
        self._summary = None
        self._pairs.clear()
        if self._store is not None:
            row = {k: (None if _missing(v) else v) for k, v in r.loc[idx].items()}
            self._store.update_row(int(idx), row)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _x_column(by: str) -> str:
    if by == "cost":
        return "cost_per_case"
    if by == "latency":
        return "latency_p50"
    raise ConfigError(f"by/x must be 'cost' or 'latency', got {by!r}")
