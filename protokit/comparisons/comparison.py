"""The Comparison: results of one compare run, with its summary, statistics, chart, verdict and exports."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from protokit._files import atomic_write_text
from protokit.comparisons import report as report_mod
from protokit.comparisons import tables
from protokit.comparisons.store import RunStore, read_run
from protokit.comparisons.tables import PairedComparison
from protokit.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from protokit.scorers import Scorer

__all__ = ["Comparison", "PairedComparison", "load_run"]


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
            self._summary = tables.summarize(self.results, self.models, self.score_names, samples=self.samples)
        return self._summary

    @property
    def samples_summary(self) -> pd.DataFrame:
        """One row per case x model: samples, errors, distinct outputs, agreement, mean scores."""
        return tables.summarize_samples(self.results, self.score_names)

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
        return tables.score_column(name, self.score_names)

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
        return tables.per_case(self.results, self._model(model), self._column(name))

    def compare_pair(self, a: str, b: str, score: str | None = None) -> PairedComparison:
        """Paired difference ``a - b`` on shared cases, its 95% interval and p-value (sign-flip test)."""
        a, b, name = self._model(a), self._model(b), self._score(score)
        key = (a, b, name)
        if key not in self._pairs:
            self._pairs[key] = tables.pair(self.results, a, b, name, self._column(name))
        return self._pairs[key]

    def pareto(self, score: str | None = None, by: str = "cost") -> list[str]:
        """Models that no other model beats on both the score and cost (or latency), cheapest first."""
        return tables.pareto(self.summary, self._column(self._score(score)), by)

    def best(self, score: str | None = None) -> str:
        """The model to use: the top scorer, or a cheaper one that is not significantly worse."""
        return report_mod.recommend(self._report_data(), self._score(score))[0]

    # -- outputs -----------------------------------------------------------------------
    def report(self, score: str | None = None) -> str:
        """A short plain-language verdict: who scores best, at what cost, and whether it is significant."""
        return report_mod.verdict(self._report_data(),
                                  None if score is None and not self.score_names else self._score(score))

    def plot(self, score: str | None = None, x: str = "cost") -> Figure:
        """Quality against cost per case (or latency p50): error bars and the Pareto front marked."""
        name = self._score(score)
        tables.x_column(x)
        return report_mod.figure(self._report_data(), name, x)

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
        page = report_mod.html_page(self._report_data(), max_rows=max_rows)
        if path is not None:
            atomic_write_text(Path(path), page)
        return page

    def _repr_html_(self) -> str:
        return report_mod.html_summary(self._report_data())

    def _report_data(self) -> report_mod.ReportData:
        return report_mod.ReportData(results=self.results, summary=self.summary, score_names=self.score_names,
                                     pair=self.compare_pair, title=repr(self), run_id=self.run_id)

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


def load_run(run_id: str, *, path: str | os.PathLike[str] | None = None) -> Comparison:
    """Reload a stored run as a Comparison with the same results and summary.

    Parameters
    ----------
    run_id
        The id shown by ``protokit runs`` (or a unique prefix), or ``Comparison.run_id``.
    path
        The cache file; by default the current one (``PROTOKIT_CACHE`` or protokit.db).
    """
    run = read_run(run_id, path=path)
    return Comparison(results=run.results, models=run.models, cases=run.cases, prompt=run.prompt, scorers=[],
                      score_names=run.score_names, run_id=run.run_id, options=run.options, store=run.store,
                      status=run.status, scorer_info=run.scorer_info)
