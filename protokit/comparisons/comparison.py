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
from protokit.comparisons.diff import RunDiff, diff_runs
from protokit.comparisons.store import RunStore, read_run
from protokit.comparisons.tables import CANDIDATE_SEP, PairedComparison, candidate_name
from protokit.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from protokit.scorers import Scorer

__all__ = ["Comparison", "PairedComparison", "load_run"]


class Comparison:
    """Results of comparing models on cases: ``results`` (one row per case x model x sample) and more.

    Build one with :func:`protokit.compare` or reload one with :func:`protokit.load_run`.

    With prompt variants (``prompt={name: ...}``) what is compared are candidates, (model, variant)
    pairs named ``"model · variant"`` (``candidates``): the summary has a row per candidate, and
    ``compare_pair``, ``pareto``, ``best``, ``plot``, ``report`` and ``diff`` speak of candidates.
    Without variants a candidate is its model, named by the model id.
    """

    def __init__(self, *, results: pd.DataFrame, models: Sequence[str], cases: pd.DataFrame, prompt: Any,
                 scorers: Sequence[Scorer], score_names: Sequence[str], run_id: str | None,
                 options: Mapping[str, Any] | None = None, store: RunStore | None = None,
                 status: str = "finished", scorer_info: Sequence[Mapping[str, Any]] | None = None,
                 prompts: Sequence[str] | None = None) -> None:
        self.results = results
        self.models = list(models)
        self.cases = cases
        self.prompt = prompt
        self.scorers = list(scorers)
        self.score_names = list(score_names)
        self.run_id = run_id
        self.options = dict(options or {})
        self.samples = int(self.options.get("samples", 1))
        self.prompts: list[str] = list(prompts if prompts is not None else self.options.get("prompts") or ())
        variants: list[str | None] = list(self.prompts) or [None]
        self._candidates = [(m, p) for m in self.models for p in variants]
        self.status = status
        self.scorer_info = list(scorer_info) if scorer_info is not None else [s.describe() for s in scorers]
        self._store = store
        self._summary: pd.DataFrame | None = None
        self._pairs: dict[tuple[str, str, str], PairedComparison] = {}

    def __repr__(self) -> str:
        run = f" run {self.run_id}" if self.run_id else ""
        prompts = f" x {len(self.prompts)} prompts" if self.prompts else ""
        return (f"<Comparison{run}: {len(self.models)} models{prompts} x {len(self.cases)} cases x {self.samples} "
                f"samples, {len(self.results)} rows, scores: {', '.join(self.score_names) or 'none'}>")

    @property
    def candidates(self) -> list[str]:
        """What is compared: the model ids, or ``"model · variant"`` for each model and prompt variant."""
        return [candidate_name(m, p) for m, p in self._candidates]

    @property
    def key(self) -> str:
        """The column naming a candidate in ``results`` and ``summary``: ``model``, or ``candidate``."""
        return "candidate" if self.prompts else "model"

    # -- tables ------------------------------------------------------------------------
    @property
    def summary(self) -> pd.DataFrame:
        """One row per model: n, errors, each score's mean and 95% interval, latency, tokens, cost."""
        if self._summary is None:
            self._summary = tables.summarize(self.results, self.models, self.score_names, samples=self.samples,
                                             prompts=self.prompts)
        return self._summary

    @property
    def samples_summary(self) -> pd.DataFrame:
        """One row per case x model (candidate): samples, errors, distinct outputs, agreement, mean scores."""
        return tables.summarize_samples(self.results, self.score_names, self.key)

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
        """The candidate meant by ``name``: its full name, or a model or variant name that is unambiguous."""
        if name in self.candidates:
            return name
        if not self.prompts:
            found = [m for m in self.models if m.split(":", 1)[-1] == name]
            if len(found) == 1:
                return found[0]
            raise ConfigError(f"no model {name!r} in this comparison; models: {', '.join(self.models)}")
        model, sep, variant = name.rpartition(CANDIDATE_SEP)
        hits: list[tuple[str, str | None]]
        if sep:  # "model · variant" with the model's short name
            hits = [(m, p) for m, p in self._candidates if p == variant and m.split(":", 1)[-1] == model]
        else:  # a variant's name when there is one model; a model's (short) name when there is one variant
            hits = [(m, p) for m, p in self._candidates
                    if (p == name and len(self.models) == 1)
                    or (len(self.prompts) == 1 and name in (m, m.split(":", 1)[-1]))]
        if len(hits) == 1:
            return candidate_name(*hits[0])
        if hits:
            raise ConfigError(f"{name!r} could be {' or '.join(candidate_name(*h) for h in hits)}; name one of them")
        raise ConfigError(f"no candidate {name!r} in this comparison; name one as 'model{CANDIDATE_SEP}variant': "
                          f"{', '.join(self.candidates)}")

    def per_case(self, model: str, score: str | None = None) -> pd.Series:
        """A model's (candidate's) score per case (the mean over samples), indexed by case id."""
        name = self._score(score)
        return tables.per_case(self.results, self._model(model), self._column(name), self.key)

    def compare_pair(self, a: str, b: str, score: str | None = None) -> PairedComparison:
        """Paired difference ``a - b`` on shared cases, its 95% interval and p-value (sign-flip test).

        ``a`` and ``b`` are models, or with prompt variants candidates (``"model · variant"``; a
        variant's name alone when there is one model).
        """
        a, b, name = self._model(a), self._model(b), self._score(score)
        key = (a, b, name)
        if key not in self._pairs:
            self._pairs[key] = tables.pair(self.results, a, b, name, self._column(name), self.key)
        return self._pairs[key]

    def pareto(self, score: str | None = None, by: str = "cost") -> list[str]:
        """Models (candidates) that no other beats on both the score and cost (latency, ttft), cheapest first."""
        return tables.pareto(self.summary, self._column(self._score(score)), by, self.key)

    def best(self, score: str | None = None) -> str:
        """The model (candidate) to use: the top scorer, or a cheaper one that is not significantly worse."""
        return report_mod.recommend(self._report_data(), self._score(score))[0]

    def diff(self, baseline: Comparison | str, *, path: str | os.PathLike[str] | None = None) -> RunDiff:
        """This run against ``baseline`` (a Comparison, or a stored run id read from ``path``'s cache).

        Per case x model (x prompt variant: candidates pair by name): whether the output changed and
        how each score moved; per model (candidate): the paired change of each score with its 95% interval
        and p-value; ``.verdict()`` says it in plain words. Rows pair by case id, so both runs should use
        the same cases in the same order.
        """
        base = load_run(baseline, path=path) if isinstance(baseline, str) else baseline
        if not isinstance(base, Comparison):
            raise ConfigError(f"diff() takes a Comparison or a stored run id, got {type(baseline).__name__}")
        return diff_runs(self.results, base.results, self.candidates, base.candidates, self.score_names,
                         base.score_names, key=self.key, base_key=base.key)

    # -- outputs -----------------------------------------------------------------------
    def report(self, score: str | None = None) -> str:
        """A short plain-language verdict: who scores best, at what cost, and whether it is significant."""
        return report_mod.verdict(self._report_data(),
                                  None if score is None and not self.score_names else self._score(score))

    def plot(self, score: str | None = None, x: str = "cost") -> Figure:
        """Quality against cost per case, latency p50 or (``x="ttft"``, streamed runs) time to first token p50.

        Error bars and the Pareto front are marked.
        """
        name = self._score(score)
        tables.x_column(x, self.summary)
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
                                     pair=self.compare_pair, title=repr(self), run_id=self.run_id, key=self.key)

    # -- human ratings -----------------------------------------------------------------
    def add_rating(self, case: Any, model: str, rating: float | int | bool | None, sample: int = 0,
                   turn: int | None = None) -> None:
        """Record a human rating for one output (``None`` clears it); kept with the stored run.

        ``model`` names a model, or with prompt variants a candidate (as ``compare_pair`` does);
        ``turn`` one turn of a conversation (the first when not given).
        """
        if rating is not None and not isinstance(rating, (int, float)):
            raise ConfigError(f"a rating must be a number or a bool, got {type(rating).__name__}")
        value = None if rating is None else float(rating)
        model = self._model(model)
        r = self.results
        match = (r["case"] == case) & (r[self.key] == model) & (r["sample"] == sample)
        if turn is not None and "turn" in r:
            match &= r["turn"] == turn
        hit = r.index[match]
        if len(hit) == 0:
            raise ConfigError(f"no result for case {case!r}, model {model}, sample {sample}"
                              + (f", turn {turn}" if turn is not None else ""))
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
