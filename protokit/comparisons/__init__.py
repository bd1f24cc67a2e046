"""The compare feature: run models side by side on cases, and everything read from such a run.

Inside, arrows point one way (each module imports only those below it)::

    resume            finishing a run whose batches were pending when its process ended
    run, estimates    pk.compare / pk.acompare / pk.estimate
    comparison        the Comparison object; load_run
    report            verdict, chart and HTML, rendered from tables (no Comparison)
    store | plan      the run store in the cache file | cases, prompts, the one argument spec
    tables | prompts  pure summary tables and paired differences | prompt variants, each case's prompt rendered
    turns             conversations: a case's messages, and its turns played one at a time
    stats             bootstrap intervals, permutation tests, Pareto fronts

Code outside this package (the CLI, the widget, the magic, promote) imports only the
names below.
"""

from __future__ import annotations

from protokit.batch import BatchProgress
from protokit.comparisons.comparison import Comparison, load_run
from protokit.comparisons.diff import RunDiff
from protokit.comparisons.estimates import TYPICAL_LATENCY_S, Estimate, estimate
from protokit.comparisons.plan import (
    DEFAULT_CONCURRENCY,
    CompareArgs,
    OnBatch,
    OnChunk,
    OnResult,
    OnStart,
    image_columns,
    load_cases,
    same_arguments,
    template_fields,
)
from protokit.comparisons.resume import resume_run
from protokit.comparisons.run import acompare, compare
from protokit.comparisons.stats import PairedResult, paired_difference
from protokit.comparisons.store import list_runs
from protokit.comparisons.tables import CANDIDATE_SEP, PairedComparison, candidate_name

__all__ = [
    "CANDIDATE_SEP",
    "DEFAULT_CONCURRENCY",
    "TYPICAL_LATENCY_S",
    "BatchProgress",
    "CompareArgs",
    "Comparison",
    "Estimate",
    "OnBatch",
    "OnChunk",
    "OnResult",
    "OnStart",
    "PairedComparison",
    "PairedResult",
    "RunDiff",
    "acompare",
    "candidate_name",
    "compare",
    "estimate",
    "image_columns",
    "list_runs",
    "load_cases",
    "load_run",
    "paired_difference",
    "resume_run",
    "same_arguments",
    "template_fields",
]
