"""Rows for the benchmark report: each benchmark script calls `record(...)` for the figures it prints.

`python -m bench` (bench/__main__.py) runs every script with SELMA_BENCH_RECORD naming a JSON-lines file; a script
run by hand (no variable) records nothing. A row is one comparison: the work, the anchor (what we are measured
against) and its figure, our figure, their ratio (ours / anchor: below 1 is better for times and memory), and the
goal the ratio is held to where an issue set one.
"""

from __future__ import annotations

import json
import os

ENV = "SELMA_BENCH_RECORD"


def record(
    benchmark: str,
    work: str,
    anchor: str,
    anchor_value: float,
    ours: str,
    our_value: float,
    unit: str,
    *,
    ratio: float | None = None,
    goal: str = "",
) -> None:
    """Append one row to the report file named by $SELMA_BENCH_RECORD (nothing when it is unset).

    `ratio` defaults to our_value / anchor_value; pass it when the comparison is of something else (e.g. extra
    costs over a shared base). `goal` is the target as text, e.g. "<= 1.3".
    """
    path = os.environ.get(ENV)
    if not path:
        return
    if ratio is None:
        ratio = our_value / anchor_value if anchor_value else float("nan")
    row = {
        "benchmark": benchmark,
        "work": work,
        "anchor": anchor,
        "anchor_value": anchor_value,
        "ours": ours,
        "our_value": our_value,
        "unit": unit,
        "ratio": ratio,
        "goal": goal,
    }
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(json.dumps(row) + "\n")
