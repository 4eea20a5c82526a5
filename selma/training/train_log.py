"""The train log (`train_log.jsonl`: one line per optimizer step) and its loss-curve PNG.

Lines are buffered and appended in batches; a resumed run first cuts the log back to its checkpoint's
step, so replayed steps are not logged twice.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

from ..atomic_files import append_jsonl, read_jsonl, write_bytes_atomic, write_text_atomic

FLUSH_EVERY = 20


class TrainLog:
    """Step records of one run; only the main process writes (`enabled=False` elsewhere)."""

    def __init__(self, path: str | Path, *, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._pending: list[dict] = []

    def restart(self, keep_through_step: int) -> None:
        """Drop records after `keep_through_step` (0: all), as a run resuming from that step replays them."""
        self._pending = []
        if not self.enabled:
            return
        kept = [r for r in read_jsonl(self.path) if r.get("step", 0) <= keep_through_step]
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def add(self, record: dict) -> None:
        if not self.enabled:
            return
        self._pending.append(record)
        if len(self._pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.enabled and self._pending:
            append_jsonl(self.path, self._pending)
            self._pending = []

    def records(self) -> list[dict]:
        return read_jsonl(self.path) + self._pending if self.enabled else []


def smooth(values: list[float], weight: float) -> list[float]:
    """Debiased exponential moving average (TensorBoard's smoothing); NaN/inf values are skipped."""
    out, average, norm = [], 0.0, 0.0
    for value in values:
        if math.isfinite(value):
            average = weight * average + (1 - weight) * value
            norm = weight * norm + (1 - weight)
        out.append(average / norm if norm else float("nan"))
    return out


def draw_loss_curve(records: list[dict], path: str | Path, title: str = "") -> Path:
    """Plot raw and smoothed loss per step into a PNG (matplotlib's Agg canvas: no GUI, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    steps = [r["step"] for r in records]
    losses = [float(r["loss"]) for r in records]
    figure = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if steps:
        weight = min(0.98, max(0.0, 1.0 - 10.0 / len(steps)))  # ~ a tenth of the run's length
        axes.plot(steps, losses, color="tab:blue", alpha=0.3, linewidth=0.8, label="loss")
        axes.plot(steps, smooth(losses, weight), color="tab:blue", linewidth=1.8, label="smoothed")
        axes.legend(loc="upper right")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("step")
    axes.set_ylabel("MSE loss")
    axes.set_title(title or "training loss")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_bytes_atomic(path, buffer.getvalue())
    return Path(path)
