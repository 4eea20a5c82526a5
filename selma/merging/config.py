"""How to merge skill experts: the method, the per-expert weights, the target rank, the pruning density.

| method      | what it computes                                                  | weights default | rank      |
|-------------|-------------------------------------------------------------------|-----------------|-----------|
| `linear`    | SELMA's merge Σ w_k ΔW_k, exact (rank Σ r_k) unless `rank` is set | 1/K (average)   | optional  |
| `cat`       | the same sum, always exact: the experts' factors stacked          | 1 (all at once) | forbidden |
| `svd`       | Σ w_k ΔW_k compressed to `rank` from the factors (see low_rank)   | 1/K             | default * |
| `ties`      | trim each ΔW_k to its top `density`, elect signs, disjoint mean   | 1 (paper's λ=1) | default * |
| `dare`      | drop ΔW_k entries with prob 1−density, rescale by 1/density, sum  | 1/K             | default * |
| `magnitude` | keep each ΔW_k's top `density` magnitudes, sum                    | 1/K             | default * |

Weights are used as given (never renormalised), so a module only some experts adapt gets only their
share: exactly what applying every expert at once with its weight does. * the default rank is, per module,
the largest rank an input expert has there (capped at min(out, in), what the module's shape allows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real

METHODS = ("linear", "cat", "svd", "ties", "dare", "magnitude")
EXACT_METHODS = ("linear", "cat")  # exact when no rank is given (cat always)
PRUNING_METHODS = ("ties", "dare", "magnitude")  # these need each dense ΔW_k by definition
_WEIGHT_ONE_METHODS = ("cat", "ties")


@dataclass(frozen=True)
class MergeConfig:
    method: str = field(default="linear", metadata={"help": f"one of {', '.join(METHODS)}"})
    weights: tuple[float, ...] | None = field(
        default=None, metadata={"help": "one weight per expert, used as given; None = the method's default"}
    )
    rank: int | None = field(
        default=None, metadata={"help": "target rank per module; None = exact (linear) or the inputs' rank"}
    )
    density: float = field(default=0.5, metadata={"help": "fraction of ΔW entries kept by ties/dare/magnitude"})
    seed: int = field(default=0, metadata={"help": "seed of dare's random drops"})

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"MergeConfig.method={self.method!r} is unknown; use one of {', '.join(METHODS)}")
        if self.weights is not None:
            weights = tuple(self.weights) if isinstance(self.weights, (list, tuple)) else None
            if not weights:
                raise ValueError(
                    f"MergeConfig.weights={self.weights!r} must be a non-empty list of numbers, one per expert "
                    "(or None for the method's default)"
                )
            bad = [w for w in weights if isinstance(w, bool) or not isinstance(w, Real) or not math.isfinite(w)]
            if bad:
                raise ValueError(
                    f"MergeConfig.weights={list(weights)!r} holds {bad[0]!r}; every weight must be a finite number"
                )
            object.__setattr__(self, "weights", tuple(float(w) for w in weights))
        if self.rank is not None and (isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1):
            raise ValueError(f"MergeConfig.rank={self.rank!r} must be a whole number >= 1 (or None)")
        if self.method == "cat" and self.rank is not None:
            raise ValueError(
                f"MergeConfig.rank={self.rank} cannot be used with method 'cat', which is exact with rank Σ r_k; "
                "use 'svd' (or 'linear' with a rank) to compress to a target rank"
            )
        if isinstance(self.density, bool) or not isinstance(self.density, Real) or not 0.0 < self.density <= 1.0:
            raise ValueError(f"MergeConfig.density={self.density!r} must be in (0, 1] (the fraction of entries kept)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ValueError(f"MergeConfig.seed={self.seed!r} must be a whole number in [0, 2**63)")

    @property
    def compresses(self) -> bool:
        """Whether the result is truncated to a rank (else it is the exact weighted sum)."""
        return self.method not in EXACT_METHODS or self.rank is not None

    def resolve_weights(self, count: int) -> list[float]:
        """The weight of each of `count` experts: the given ones, or the method's default."""
        if self.weights is None:
            return [1.0 if self.method in _WEIGHT_ONE_METHODS else 1.0 / count] * count
        if len(self.weights) != count:
            raise ValueError(
                f"MergeConfig.weights has {len(self.weights)} value(s) but {count} expert(s) were given; "
                "give exactly one weight per expert, in the same order, or none for the default"
            )
        return list(self.weights)


def parse_weights(text: str | None) -> tuple[float, ...] | None:
    """Comma-separated weights as typed in the CLI or a node ("0.5, 0.5"); empty or None -> None (the default)."""
    if text is None or not text.strip():
        return None
    weights = []
    for part in text.split(","):
        try:
            weights.append(float(part))
        except ValueError:
            raise ValueError(
                f"weights={text!r}: {part.strip()!r} is not a number; give one number per expert, separated by "
                "commas (e.g. 0.5,0.5), or nothing for the method's default"
            ) from None
    return tuple(weights)
