"""Means with 95% percentile-bootstrap intervals, and paired differences against the base model.

Written on numpy (a percentile bootstrap is a few lines; scipy.stats.bootstrap would add scipy, ~40 MB, for
one function). Seeded, so a scoreboard is reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    mean: float
    n: int
    low: float
    high: float

    def to_json(self) -> dict:
        return {"mean": self.mean, "n": self.n, "ci_low": self.low, "ci_high": self.high}


def bootstrap(values: Sequence[float], *, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> Estimate:
    """The mean of `values` and its percentile-bootstrap interval (a single value: an interval of width 0)."""
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or data.size == 0:
        raise ValueError("bootstrap needs at least one value")
    if not np.isfinite(data).all():
        raise ValueError("bootstrap got a NaN or infinite score")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Estimate(float(data.mean()), int(data.size), float(low), float(high))


def paired_difference(variant: Mapping[str, float], base: Mapping[str, float], *, seed: int = 0) -> Estimate:
    """Mean of variant - base over the items (prompt + seed) both scored, with its bootstrap interval."""
    keys = sorted(set(variant) & set(base))
    if not keys:
        raise ValueError("no item was scored for both variants, so there is no paired difference")
    return bootstrap([variant[k] - base[k] for k in keys], seed=seed)
