"""``protokit runs resume``: finish a stored run whose batches were pending when its process ended.

A run made with ``compare(batch=True)`` records each batch in the cache file as soon as the
provider accepts it (:mod:`protokit.batch.ledger`), and the rows of its other calls before it
starts waiting. Resuming waits for the batches still pending (without sending anything again),
reads their answers into the cache, writes the rows they answer into the stored run and marks
it finished.

Those rows are scored by the run's built-in scorers (``pk.scorers.exact(...)``, a judge named by its
spec, ...), made again from the recipe the run stored of each (``Scorer.describe()``); a judge's calls
go through the run's cache file. A scorer that cannot be made again (your own function, or one built
on an object such as a ``pk.model``) is not applied: one line says which, and so does each row's
``scorer_error``. Running the same compare again applies them, its answers replaying from the cache.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from protokit import _aio
from protokit import batch as batch_mod
from protokit import cache as cache_mod
from protokit.comparisons.comparison import Comparison, load_run
from protokit.comparisons.plan import DEFAULT_CONCURRENCY
from protokit.comparisons.run import _fill_answer, _fill_error, score_rows
from protokit.comparisons.store import RunStore, StoredRun, read_run
from protokit.comparisons.tables import candidate_name
from protokit.errors import ConfigError
from protokit.models import base
from protokit.runner import CallContext
from protokit.scorers import Scorer, rebuild

__all__ = ["resume_run"]

_WHY = "a stored run cannot rebuild a scorer made from your own function or object"
_UNAPPLIED = ("{names}: not applied by `protokit runs resume` (" + _WHY + "); run the same compare again to "
              "apply {them} (its answer replays from the cache)")


def _cache(path: str | os.PathLike[str] | None) -> cache_mod.Cache:
    """The cache to resume in: the process's when it is that file, else that file opened to record."""
    current = cache_mod.get_cache()
    if current.mode in ("auto", "record") and (path is None or Path(path).resolve() == Path(current.path).resolve()):
        return current
    return cache_mod.Cache(Path(path if path is not None else current.path), mode="auto", create=False)


def _rows(stored: StoredRun) -> tuple[Callable[[int], dict[str, Any]], Callable[[int], dict[str, Any]]]:
    """The start of a row (case, model, prompt variant, sample) from its index, as the run laid its calls out,
    and the case its scorers see.

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

    def case(idx: int) -> dict[str, Any]:
        return records[idx // per_case]

    return base, case


def _scorers(stored: StoredRun) -> tuple[list[Scorer], list[str]]:
    """The run's scorers made again from what it stored, in its order; and the names of those that cannot be."""
    info = {str(i.get("name")): i for i in stored.scorer_info if isinstance(i, Mapping)}
    made: list[Scorer] = []
    unmade: list[str] = []
    for name in stored.score_names:
        scorer = rebuild(info[name]) if name in info else None
        if scorer is None:
            unmade.append(name)
        else:
            made.append(scorer)
    return made, unmade


async def _score(scorers: Sequence[Scorer], rows: Sequence[tuple[dict[str, Any], Mapping[str, Any]]],
                 cache: cache_mod.Cache, *, judged: bool, concurrency: int) -> None:
    # A judge's calls are recorded in (and replayed from) the run's cache file, as its answers are.
    with base.use_pipeline(CallContext(cache=cache).pipeline()):
        await score_rows(scorers, rows, judged=judged, concurrency=concurrency)


def resume_run(run_id: str, *, path: str | os.PathLike[str] | None = None, cancel: bool = False,
               say: Callable[[str], None] | None = None) -> Comparison:
    """Finish a run's pending batches and store the rows they answer, scored; returns the run reloaded.

    Parameters
    ----------
    run_id
        The run's id (or a unique prefix), as ``protokit runs`` lists it.
    path
        The cache file holding the run; by default the current one.
    cancel
        Cancel the pending batches at the provider instead of waiting for all of them (what
        they finished is still read and stored).
    say
        Told, in one line, which of the run's scorers could not be applied to the rows answered now
        (and how to apply them); a UserWarning by default.
    """
    cache = _cache(path)
    try:
        return _resume(cache, run_id, cancel, say or _warn)
    finally:
        if cache is not cache_mod.get_cache():
            cache.close()


def _warn(line: str) -> None:
    warnings.warn(line, UserWarning, stacklevel=4)


def _resume(cache: cache_mod.Cache, run_id: str, cancel: bool, say: Callable[[str], None]) -> Comparison:
    stored = read_run(run_id, path=cache.path)
    if stored.status == "running":
        raise ConfigError(f"run {stored.run_id} is still running in a live process; resume a run whose process "
                          "ended (`protokit runs` shows it as interrupted)")
    jobs = batch_mod.Ledger(cache).for_run(stored.run_id)
    if not jobs:
        raise ConfigError(f"run {stored.run_id} sent no batch, so there is nothing to resume; run its compare "
                          "again (recorded answers replay from the cache)")
    store = RunStore(cache, stored.run_id)
    row_of, case_of = _rows(stored)
    scorers, unmade = _scorers(stored)
    costs: dict[int, Any] = {int(str(i)): c for i, c in stored.results["cost_usd"].items() if c == c} \
        if "cost_usd" in stored.results else {}  # c == c: not NaN
    # A row the run stored with an answer (scored) stays; missing rows and failed ones are (re)written.
    kept = {int(str(i)) for i, e in stored.results["error"].items() if e is None or e != e} \
        if "error" in stored.results else set()
    store.reopen()
    status = "cancelled"
    try:
        outcomes = _aio.run_sync(batch_mod.resume_run(stored.run_id, cache, cancel=cancel))
        rows: list[tuple[int, dict[str, Any]]] = []
        answered: list[tuple[dict[str, Any], Mapping[str, Any]]] = []
        for outcome in outcomes:
            idx = int(outcome.call.tag)
            if idx in kept:
                continue
            row = row_of(idx)
            row["attempts"] = outcome.attempts
            if outcome.response is None:
                _fill_error(row, outcome.error)
                said = getattr(outcome.error, "response", None)
                if said is not None:
                    _fill_answer(row, said)
            else:
                _fill_answer(row, outcome.response)
                answered.append((row, case_of(idx)))
            rows.append((idx, row))
        if scorers and answered:
            _aio.run_sync(_score(scorers, answered, cache, judged="judge_cost_usd" in stored.results,
                                 concurrency=int(stored.options.get("concurrency") or DEFAULT_CONCURRENCY)))
        if unmade and answered:
            note = _UNAPPLIED.format(names=", ".join(unmade), them="them" if len(unmade) > 1 else "it")
            for row, _case in answered:
                row["scorer_error"] = "; ".join(filter(None, [row.get("scorer_error"), note]))
            say(f"scorer{'s' if len(unmade) > 1 else ''} {', '.join(unmade)} not applied to the {len(answered)} "
                f"rows answered now ({_WHY}); to apply "
                f"{'them' if len(unmade) > 1 else 'it'}, run the same compare again: its answers replay from "
                "the cache")
        for idx, row in rows:
            costs[idx] = row.get("cost_usd")
            store.add(idx, row)
        status = "finished"
    finally:
        spent = [c for c in costs.values() if c is not None]
        store.finish(status, float(sum(spent)) if spent else None)
    return load_run(stored.run_id, path=cache.path)
