"""Finishing a run's batches after its process ended (``protokit runs resume``), from the ledger alone:
the models are rebuilt from their specs (keys from the environment), the requests from their dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protokit import cache as cache_mod
from protokit.batch.ledger import OPEN, Job, Ledger
from protokit.batch.pending import Live, Pending, request_of
from protokit.batch.poller import BatchRun
from protokit.batch.progress import TextBar
from protokit.batch.registry import backend_named
from protokit.errors import ConfigError
from protokit.models import Model
from protokit.runner import Call, Outcome

__all__ = ["open_jobs", "resume_run"]


def _model_of(job: Job) -> Model:
    """The model that sent a job, rebuilt from its spec, name, server and price (the key from the environment)."""
    from protokit.models import model as make_model

    st = job.state
    kwargs: dict[str, Any] = {}
    if st.get("model_id") and st["model_id"] != job.model:
        kwargs["name"] = st["model_id"]
    if st.get("base_url"):
        kwargs["base_url"] = st["base_url"]
    if st.get("price"):
        kwargs["price"] = st["price"]
    return make_model(job.model, **kwargs)


def open_jobs(run_id: str, cache: cache_mod.Cache) -> list[Job]:
    """A run's batches that were not read yet (sent and pending, or cancelled)."""
    return [j for j in Ledger(cache).for_run(run_id) if j.status in OPEN]


async def resume_run(run_id: str, cache: cache_mod.Cache, *, cancel: bool = False,
                     bar: TextBar | None = None) -> list[Outcome]:
    """Finish a run's batches from the ledger: wait for those still pending, read them into the cache.

    Returns an Outcome per call they answer (``call.tag`` is the run's tag of the call, its row
    index for a comparison), answers read earlier replayed from the cache. ``cancel=True``
    cancels the pending batches first (what was done is still read). Ctrl-C stops waiting and
    leaves the batches pending, to be resumed again.
    """
    if cache.mode in ("off", "replay") or cache.readonly:
        raise ConfigError(f"resuming a run records its answers: the cache is {cache.mode}"
                          f"{' and read-only' if cache.readonly else ''}; use PROTOKIT_CACHE_MODE=auto")
    ledger = Ledger(cache)
    jobs = [j for j in ledger.for_run(run_id) if j.status in (*OPEN, "collected")]
    calls: list[Call] = []
    live: list[Live] = []
    done: list[tuple[Job, Model, str, list[int], Mapping[str, Any] | None]] = []
    for job in jobs:
        model = _model_of(job)
        pending: dict[str, Pending] = {}
        for held in ledger.requests(job):
            request = request_of(held.request)
            positions: list[int] = []
            for tag in held.tags:
                positions.append(len(calls))
                calls.append(Call(model, request, tag=tag))
            if job.status == "collected":
                done.append((job, model, held.key, positions, held.error))
            else:
                pending[held.key] = Pending(held.key, model, request, positions)
        if job.status != "collected":
            live.append(Live(job, backend_named(job.provider), model, pending))
    batch = BatchRun(calls, cache=cache, run_id=run_id, cancel_on_interrupt=False, bar=bar)
    batch.jobs = live
    for job, model, key, where, error in done:
        batch.end_collected(where, model, key, error, job.id)
    if cancel:
        await batch.cancel_at_provider(live)
    await batch.wait()
    return batch.finished()
