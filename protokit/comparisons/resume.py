"""``protokit runs resume``: finish a stored run whose batches were pending when its process ended.

A run made with ``compare(batch=True)`` records each batch in the cache file as soon as the
provider accepts it (:mod:`protokit.batch.ledger`), and the rows of its other calls before it
starts waiting. Resuming waits for the batches still pending (without sending anything again),
reads their answers into the cache, writes the rows they answer into the stored run and marks
it finished. Its scorers (Python objects) are not stored, so these rows are not scored: re-run
the same compare to score them, their answers replay from the cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from protokit import _aio
from protokit import batch as batch_mod
from protokit import cache as cache_mod
from protokit.comparisons.comparison import Comparison, load_run
from protokit.comparisons.run import _fill_answer, _fill_error
from protokit.comparisons.store import RunStore, StoredRun, read_run
from protokit.comparisons.tables import candidate_name
from protokit.errors import ConfigError

__all__ = ["resume_run"]

_UNSCORED = ("not scored: answered by `protokit runs resume`; run the same compare again to score it "
             "(its answer replays from the cache)")


def _cache(path: str | os.PathLike[str] | None) -> cache_mod.Cache:
    """The cache to resume in: the process's when it is that file, else that file opened to record."""
    current = cache_mod.get_cache()
    if current.mode in ("auto", "record") and (path is None or Path(path).resolve() == Path(current.path).resolve()):
        return current
    return cache_mod.Cache(Path(path if path is not None else current.path), mode="auto", create=False)


def _rows(stored: StoredRun) -> Callable[[int], dict[str, Any]]:
    """The start of a row (case, model, prompt variant, sample) from its index, as the run laid its calls out.

    A batched run plays no turns (``plan`` refuses them), so its rows are case x candidate x sample in
    the order ``plan`` lays its slots out.
    """
    prompts = list(stored.options.get("prompts") or ())
    samples = int(stored.options.get("samples", 1))
    candidates = [(m, p) for m in stored.models for p in (prompts or [None])]
    per_case = len(candidates) * samples
    records = [{str(k): v for k, v in r.items()} for r in stored.cases.to_dict("records")]
    template: dict[str, Any] = dict.fromkeys(str(c) for c in stored.results.columns)

    def base(idx: int) -> dict[str, Any]:
        row = template.copy()
        row.update(records[idx // per_case])
        model, variant = candidates[idx % per_case // samples]
        row["model"] = model
        if prompts:
            row["prompt"], row["candidate"] = variant, candidate_name(model, variant)
        row["sample"] = idx % samples
        row["output"] = ""
        return row

    return base


def resume_run(run_id: str, *, path: str | os.PathLike[str] | None = None, cancel: bool = False) -> Comparison:
    """Finish a run's pending batches and store the rows they answer; returns the run reloaded.

    Parameters
    ----------
    run_id
        The run's id (or a unique prefix), as ``protokit runs`` lists it.
    path
        The cache file holding the run; by default the current one.
    cancel
        Cancel the pending batches at the provider instead of waiting for all of them (what
        they finished is still read and stored).
    """
    cache = _cache(path)
    try:
        return _resume(cache, run_id, cancel)
    finally:
        if cache is not cache_mod.get_cache():
            cache.close()


def _resume(cache: cache_mod.Cache, run_id: str, cancel: bool) -> Comparison:
    stored = read_run(run_id, path=cache.path)
    if stored.status == "running":
        raise ConfigError(f"run {stored.run_id} is still running in a live process; resume a run whose process "
                          "ended (`protokit runs` shows it as interrupted)")
    jobs = batch_mod.Ledger(cache).for_run(stored.run_id)
    if not jobs:
        raise ConfigError(f"run {stored.run_id} sent no batch, so there is nothing to resume; run its compare "
                          "again (recorded answers replay from the cache)")
    store = RunStore(cache, stored.run_id)
    base = _rows(stored)
    costs: dict[int, Any] = {int(str(i)): c for i, c in stored.results["cost_usd"].items() if c == c} \
        if "cost_usd" in stored.results else {}  # c == c: not NaN
    # A row the run stored with an answer (scored) stays; missing rows and failed ones are (re)written.
    kept = {int(str(i)) for i, e in stored.results["error"].items() if e is None or e != e} \
        if "error" in stored.results else set()
    store.reopen()
    status = "cancelled"
    try:
        outcomes = _aio.run_sync(batch_mod.resume_run(stored.run_id, cache, cancel=cancel))
        for outcome in outcomes:
            idx = int(outcome.call.tag)
            if idx in kept:
                continue
            row = base(idx)
            row["attempts"] = outcome.attempts
            if outcome.response is None:
                _fill_error(row, outcome.error)
                answered = getattr(outcome.error, "response", None)
                if answered is not None:
                    _fill_answer(row, answered)
            else:
                _fill_answer(row, outcome.response)
                if stored.score_names:
                    row["scorer_error"] = _UNSCORED
            costs[idx] = row.get("cost_usd")
            store.add(idx, row)
        status = "finished"
    finally:
        spent = [c for c in costs.values() if c is not None]
        store.finish(status, float(sum(spent)) if spent else None)
    return load_run(stored.run_id, path=cache.path)
