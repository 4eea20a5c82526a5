"""Benchmark: what a second `selma eval` on the same run costs, against the first, in the same run.

    python bench/evaluation.py              # the demo's run (tiny models, offline) in a temporary folder

Runs `selma demo` once to get a run with experts and held-out prompts, deletes its evaluation folder, then
times `selma eval --run-dir` twice. The first run renders every variant's images, writes the DSG questions
and asks the tiny random answerers; the second finds everything on disk. Prints both times, their ratio,
and the answerer calls and model loads of each (the second should make 0 calls and load no model).
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout: `bench` and `selma` importable

from bench.record import record  # noqa: E402
from selma.cli import main  # noqa: E402


def timed_eval(run: Path) -> tuple[float, int, int]:
    """(seconds, answerer calls, model loads) of one `selma eval --run-dir`."""
    from transformers import PreTrainedModel

    loads = {"n": 0}
    original = PreTrainedModel.from_pretrained.__func__

    def counting(cls, *args, **kwargs):
        loads["n"] += 1
        return original(cls, *args, **kwargs)

    PreTrainedModel.from_pretrained = classmethod(counting)
    out = io.StringIO()
    try:
        start = time.perf_counter()
        with contextlib.redirect_stdout(out):
            assert main(["eval", "--run-dir", str(run)]) == 0
        seconds = time.perf_counter() - start
    finally:
        PreTrainedModel.from_pretrained = classmethod(original)
    calls = int(re.search(r"(\d+) answerer call\(s\)", out.getvalue()).group(1))
    return seconds, calls, loads["n"]


def main_bench() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "demo"
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["demo", "--run-dir", str(run)]) == 0
        shutil.rmtree(run / "evaluation")
        first = timed_eval(run)
        second = timed_eval(run)
    print(f"first  selma eval: {first[0]:7.2f} s, {first[1]:4d} answerer calls, {first[2]} model loads")
    print(f"second selma eval: {second[0]:7.2f} s, {second[1]:4d} answerer calls, {second[2]} model loads")
    print(f"ratio second/first: {second[0] / first[0]:.3f}")
    work = f"selma eval of the demo's run, again ({second[1]} answerer calls, {second[2]} model loads): time"
    record("evaluation", work, "first selma eval", first[0], "second selma eval", second[0], "s")


if __name__ == "__main__":
    main_bench()
