"""Every reader of expert files refuses NaN/Inf tensors: a diverged training run must not merge or load silently."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..errors import SelmaError


class NonFiniteExpert(SelmaError, ValueError):
    """An expert holds NaN or Inf values."""


def check_finite(tensors: Mapping[str, torch.Tensor], source: object) -> None:
    """Raise NonFiniteExpert naming `source` (a file, or what is being written) and the first bad tensor."""
    bad = [key for key, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise NonFiniteExpert(
            f"{source}: {len(bad)} tensor(s) hold NaN or Inf values, the first {bad[0]!r}; the expert is damaged "
            "(a training run that diverged?): retrain it, e.g. with a lower learning rate"
        )
