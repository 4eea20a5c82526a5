"""Adapts the core's `on_progress(done, total)` callbacks to a tqdm bar."""

from __future__ import annotations

from tqdm import tqdm


class TqdmProgress:
    def __init__(self, desc: str, unit: str = "it") -> None:
        self.desc, self.unit = desc, unit
        self.bar: tqdm | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, dynamic_ncols=True)
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
