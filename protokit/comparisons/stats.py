"""Small, dependency-free statistics for comparing models on the same cases.

* :func:`bootstrap_ci`: the mean with a percentile bootstrap interval.
* :func:`paired_difference`: the mean paired difference between two models on
  shared cases, a bootstrap interval for it and a two-sided p-value from a
  *paired sign-flip permutation test*: under "no difference" each case's
  difference is as likely to be ``+d`` as ``-d``. The test is exact (all 2^n
  sign patterns) for up to 16 pairs, uses 10,000 random sign patterns up to
  2,000 pairs, and beyond that the normal approximation of the same sign-flip
  distribution (``z = |sum d| / sqrt(sum d^2)``), which it converges to.
* :func:`pareto_front`: the models no other model beats on both quality and cost.

Every random draw is seeded, so a summary computed twice (or reloaded) is identical.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "EXACT_MAX",
    "NORMAL_MIN",
    "PairedResult",
    "bootstrap_ci",
    "paired_difference",
    "pareto_front",
    "percentile",
    "sign_flip_p_value",
]

EXACT_MAX = 16
NORMAL_MIN = 2000
N_BOOT = 2000
N_PERM = 10_000
# Resamples are drawn in blocks of at most this many values so a 20,000-case
# bootstrap never holds a 2,000 x 20,000 index matrix in memory.
_BLOCK = 1_000_000

FloatArray = npt.NDArray[np.float64]


def _clean(values: Sequence[float] | FloatArray) -> FloatArray:
    arr = np.asarray(values, dtype=float)
    return arr[~np.isnan(arr)]


def _boot_means(arr: FloatArray, n_boot: int, rng: np.random.Generator) -> FloatArray:
    n = arr.size
    out = np.empty(n_boot)
    step = max(1, _BLOCK // n)
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = arr[idx].mean(axis=1)
    return out


def bootstrap_ci(values: Sequence[float] | FloatArray, *, level: float = 0.95, n_boot: int = N_BOOT,
                 seed: int = 0) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean and its percentile bootstrap interval; NaNs are ignored."""
    arr = _clean(values)
    if arr.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(arr.mean())
    if arr.size == 1 or np.all(arr == arr[0]):
        return (mean, mean, mean)  # no spread to resample
    means = _boot_means(arr, n_boot, np.random.default_rng(seed))
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return (mean, float(lo), float(hi))


def sign_flip_p_value(diffs: Sequence[float] | FloatArray, *, n_perm: int = N_PERM, seed: int = 0) -> float:
    """Two-sided p-value of a paired sign-flip permutation test that the mean difference is zero."""
    d = _clean(diffs)
    n = d.size
    if n == 0 or not np.any(d):
        return 1.0
    observed = abs(d.sum())
    tol = 1e-9 * max(1.0, observed)  # sums of floats: count ties as "at least as extreme"
    if n <= EXACT_MAX:
        patterns = np.arange(2**n)[:, None] >> np.arange(n) & 1
        sums = np.abs((patterns * 2 - 1) @ d)
        return float(np.mean(sums >= observed - tol))
    if n >= NORMAL_MIN:
        z = observed / math.sqrt(float(np.sum(d * d)))
        return math.erfc(z / math.sqrt(2))
    rng = np.random.default_rng(seed)
    hits = 0
    step = max(1, _BLOCK // n)
    for start in range(0, n_perm, step):
        rows = min(step, n_perm - start)
        signs = rng.integers(0, 2, size=(rows, n)) * 2 - 1
        hits += int(np.sum(np.abs(signs @ d) >= observed - tol))
    # +1 on both sides: the observed pattern is one of the permutations (never p = 0).
    return (hits + 1) / (n_perm + 1)


@dataclass(frozen=True)
class PairedResult:
    """Mean of ``a - b`` over shared cases, its interval and the sign-flip p-value."""

    n: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    p_value: float


def paired_difference(a: Sequence[float] | FloatArray, b: Sequence[float] | FloatArray, *,
                      level: float = 0.95, seed: int = 0) -> PairedResult:
    """Compare two aligned score vectors (one value per case); pairs with a NaN are dropped."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired scores need equal lengths, got {x.size} and {y.size}")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if x.size == 0:
        return PairedResult(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    d = x - y
    diff, lo, hi = bootstrap_ci(d, level=level, seed=seed)
    return PairedResult(int(x.size), float(x.mean()), float(y.mean()), diff, lo, hi,
                        sign_flip_p_value(d, seed=seed))


def percentile(values: Sequence[float] | FloatArray, q: float) -> float:
    """The q-th percentile (0-100, linear interpolation) ignoring NaNs; NaN when empty."""
    arr = _clean(values)
    return float(np.percentile(arr, q)) if arr.size else math.nan


def pareto_front(points: Sequence[tuple[str, float, float]]) -> list[str]:
    """Names of ``(name, quality, cost)`` points that no other point dominates.

    Higher quality and lower cost are better; a point is dominated when another
    is at least as good on both and strictly better on one. Points with a NaN
    are left out (they cannot be placed). The front is returned cheapest first.
    """
    ok = [(n, q, c) for n, q, c in points if not (math.isnan(q) or math.isnan(c))]
    front = [
        (c, -q, n) for n, q, c in ok
        if not any(q2 >= q and c2 <= c and (q2 > q or c2 < c) for _, q2, c2 in ok)
    ]
    return [n for _, _, n in sorted(front)]
