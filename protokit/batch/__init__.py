"""Provider batch APIs: ``pk.compare(..., batch=True)`` and ``protokit runs resume``.

Inside, arrows point one way::

    resume                         finish a run's batches after its process ended, from the ledger
    poller                         send, wait (progress bar), read into the cache, cancel
    registry                       which models can batch, each provider's backend
    openai | anthropic | ledger    each provider's batch API | the batches kept in the cache file
    progress                       where the batches are (BatchProgress), the text progress bar
    base                           the Backend protocol, batch prices

A batched call is answered, cached (under the key the same call without a batch has) and
billed (at the price table's ``batch_input``/``batch_output``) as one call; see
:mod:`protokit.batch.poller` for the flow and :mod:`protokit.batch.ledger` for what outlives
a process.
"""

from __future__ import annotations

from protokit.batch.base import Answer, Backend, Status, batch_cost, batch_reserve, check_batch
from protokit.batch.ledger import Job, Ledger
from protokit.batch.poller import BatchRun, OnBatch, run_calls
from protokit.batch.progress import BatchProgress
from protokit.batch.registry import backend_for, batchable
from protokit.batch.resume import open_jobs, resume_run

__all__ = ["Answer", "Backend", "BatchProgress", "BatchRun", "Job", "Ledger", "OnBatch", "Status", "backend_for",
           "batch_cost", "batch_reserve", "batchable", "check_batch", "open_jobs", "resume_run", "run_calls"]
