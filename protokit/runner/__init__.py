"""Async fan-out of model calls: limits, retries, cancellation, budget and progress.

Every call protokit makes goes through :func:`execute`: a cache lookup (by the
cache's mode), then the provider with retries (exponential backoff with full
jitter, honouring ``Retry-After``/``retry-after-ms``), then a recording. The
:class:`Runner` fans many calls out under a global limit and an adaptive
per-provider limit (halved on a 429, grown back by one per success), and ends
every call as an :class:`Outcome`: a response or an error value, never lost.
"""

from __future__ import annotations

from protokit.runner.budget import Budget
from protokit.runner.calls import DEFAULT_CONTEXT, CallContext, call_context, execute
from protokit.runner.fanout import AdaptiveLimit, Call, Outcome, Progress, Runner, requests_for
from protokit.runner.observe import CallRecord, add_observer, observing, remove_observer
from protokit.runner.policy import DEFAULT_POLICY, RetryPolicy, retry_policy

__all__ = ["DEFAULT_CONTEXT", "DEFAULT_POLICY", "AdaptiveLimit", "Budget", "Call", "CallContext", "CallRecord",
           "Outcome", "Progress", "RetryPolicy", "Runner", "add_observer", "call_context", "execute", "observing",
           "remove_observer", "requests_for", "retry_policy"]
