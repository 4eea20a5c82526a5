"""Errors a training run raises on purpose; each message says what happened, what was kept, and the fix."""

from __future__ import annotations

from ..errors import SelmaError


class NonFiniteLoss(SelmaError):
    """The loss (or the gradients) became NaN/inf; nothing from that step was applied or saved."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


class TrainingOutOfMemory(SelmaError):
    """The device ran out of memory; the message suggests settings that need less."""


class CheckpointMismatch(SelmaError):
    """A checkpoint exists but belongs to a run with other settings or another base model."""


class TrainingBusy(SelmaError):
    """Another process is training the same skill into the same folder."""
