"""The learning-rate schedule of training: linear warmup, then constant (`WarmupThenConstant`, for LambdaLR)."""

from __future__ import annotations


class WarmupThenConstant:
    """LR factor: linear from 1/(warmup+1) to 1 over `warmup` steps, then 1 (a class, so it pickles for resume)."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup

    def __call__(self, step: int) -> float:
        return min(1.0, (step + 1) / (self.warmup + 1)) if self.warmup else 1.0
