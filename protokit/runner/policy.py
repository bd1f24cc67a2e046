"""How retryable errors (429, 5xx, timeouts, resets) are retried: full-jitter backoff that honours
``Retry-After`` and ``retry-after-ms``."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

from protokit.errors import ConfigError, ProviderError, RateLimitError

__all__ = ["DEFAULT_POLICY", "RetryPolicy", "retry_policy"]


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How retryable errors (429, 5xx, timeouts, resets) are retried."""

    retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, error: ProviderError) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            # The server said when; add a little jitter so waiters do not return in lockstep.
            return min(self.max_delay, error.retry_after) * (1 + 0.1 * random.random())
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


DEFAULT_POLICY = RetryPolicy()


def retry_policy(retries: int | RetryPolicy | None) -> RetryPolicy:
    """The retry policy for ``retries=``: a count keeps the default backoff; None the default policy."""
    if retries is None:
        return DEFAULT_POLICY
    if isinstance(retries, RetryPolicy):
        return retries
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"retries must be a whole number >= 0 or a RetryPolicy, got {retries!r}")
    return dataclasses.replace(DEFAULT_POLICY, retries=retries)
