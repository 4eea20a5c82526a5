"""Run every benchmark at a small, stated size and write one report: bench/results.md and bench/results.json.

    python -m bench                      # all of them (about 20 minutes on 2 CPU cores), README table updated
    python -m bench --only merge train   # some of them; the report keeps the other benchmarks' last rows
    python -m bench --no-readme          # leave README.md as it is

Each benchmark runs as its own process (`python bench/NAME.py ARGS`, the sizes below), one after another so
they never share the CPU, with SELMA_BENCH_RECORD naming a file where it records its rows (bench/record.py):
the work, the anchor measured in the same run and its figure, our figure, the ratio ours / anchor, the goal.
Its printed output goes to bench/logs/NAME.txt. The README's performance table (between the
`<!-- bench:begin -->` and `<!-- bench:end -->` markers) is generated from the same rows.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.record import ENV  # noqa: E402

# name -> (arguments: the small size the report is made at, what it measures)
BENCHMARKS: dict[str, tuple[list[str], str]] = {
    "styleinject_layers": (["--repeats", "5"], "StyleInject's extra cost vs LoRA's on SD1.5's 64 adapted layers"),
    "merge": ([], "merging 2/5/8 experts at r=32/128 over 32 SD1.5 modules vs dense SVD and PEFT"),
    "train": (
        ["--sd15", "--images", "4", "--warmup", "2", "--threads", "1"],
        "one training step, SD1.5-size UNet, 64 px",
    ),
    "train_flux": ([], "one FLUX LoRA training step, a FLUX-shaped transformer at 128 px, vs diffusers + peft"),
    "dataset": ([], "rendering a dataset, batched vs one prompt at a time (tiny SD)"),
    "diversity": (["--quick"], "the ROUGE-L filter vs rouge_score; LLM calls in flight"),
    "answerers": ([], "the VLM answerer batched vs one pair per forward (tiny LLaVA)"),
    "evaluation": ([], "a second selma eval of the same run vs the first"),
}
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}"


def run_benchmark(name: str, logs: Path) -> tuple[list[dict], float, int]:
    """Run one benchmark; returns its rows, its seconds and its exit status."""
    arguments, _ = BENCHMARKS[name]
    with tempfile.NamedTemporaryFile(prefix=f"selma-bench-{name}-", suffix=".jsonl", delete=False) as rows_file:
        rows_path = Path(rows_file.name)
    log = logs / f"{name}.txt"
    command = [sys.executable, str(HERE / f"{name}.py"), *arguments]
    print(f"== {name}: {' '.join(['python', f'bench/{name}.py', *arguments])}", flush=True)
    began = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        status = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, ENV: str(rows_path)})
    seconds = time.perf_counter() - began
    rows = [json.loads(line) for line in rows_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows_path.unlink()
    outcome = "ok" if status.returncode == 0 else f"FAILED (exit {status.returncode}, see {log.relative_to(ROOT)})"
    print(f"   {len(rows)} rows in {seconds:.0f} s, {outcome}", flush=True)
    return rows, seconds, status.returncode


def goal_met(row: dict) -> bool | None:
    """Whether the row's ratio meets its goal ("<= 1.3", ">= 6", "<= 1/300"); None without a goal."""
    goal = row.get("goal", "").strip()
    if not goal:
        return None
    operator, _, bound = goal.partition(" ")
    limit = float(Fraction(bound))
    return row["ratio"] <= limit if operator == "<=" else row["ratio"] >= limit


def figure(value: float, unit: str) -> str:
    return f"{value:.3g} {unit}"


def table(rows: list[dict]) -> str:
    lines = [
        "| benchmark | work | anchor | anchor's figure | ours | our figure | ours / anchor | goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = goal_met(row)
        goal = row["goal"] + ("" if met is None else (" ✓" if met else " ✗ not met"))
        lines.append(
            f"| {row['benchmark']} | {row['work']} | {row['anchor']} | {figure(row['anchor_value'], row['unit'])} | "
            f"{row['ours']} | {figure(row['our_value'], row['unit'])} | {row['ratio']:.3g} | {goal} |"
        )
    return "\n".join(lines)


def write_report(report: dict) -> None:
    (HERE / "results.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    runs = ", ".join(
        f"{name} {run['seconds']:.0f} s" + ("" if run["status"] == 0 else " (FAILED)")
        for name, run in report["runs"].items()
    )
    text = [
        "# Benchmark report",
        "",
        f"Generated by `python -m bench` on {report['date']}: {report['machine']}.",
        "Each row compares our figure with an anchor measured in the same run on the same machine; the ratio is",
        "ours / anchor (below 1 is better for times and memory, above 1 for rates). Runs: " + runs + ".",
        "Sizes and methods: the docstring of each `bench/NAME.py`; full output in `bench/logs/`.",
        "",
        table(report["rows"]),
        "",
    ]
    (HERE / "results.md").write_text("\n".join(text), encoding="utf-8")


def update_readme(report: dict) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} block to replace; add the two markers where it goes")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    block = f"\n_{report['machine']}; {report['date']}; generated by `python -m bench`._\n\n{table(report['rows'])}\n"
    readme.write_text(head + BEGIN + block + END + tail, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    parser.add_argument("--no-readme", action="store_true", help="do not regenerate README.md's performance table")
    args = parser.parse_args()
    names = args.only or list(BENCHMARKS)
    logs = HERE / "logs"
    logs.mkdir(exist_ok=True)
    previous = HERE / "results.json"
    report = json.loads(previous.read_text(encoding="utf-8")) if args.only and previous.exists() else {}
    kept_rows = [row for row in report.get("rows", []) if row["benchmark"] not in names]
    runs = {name: run for name, run in report.get("runs", {}).items() if name not in names}
    new_rows: list[dict] = []
    for name in names:
        rows, seconds, status = run_benchmark(name, logs)
        new_rows += rows
        runs[name] = {"seconds": round(seconds, 1), "status": status, "arguments": BENCHMARKS[name][0]}
    order = list(BENCHMARKS)
    rows = sorted(kept_rows + new_rows, key=lambda row: order.index(row["benchmark"]))
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "runs": {name: runs[name] for name in order if name in runs},
        "rows": rows,
    }
    write_report(report)
    if not args.no_readme:
        update_readme(report)
    print(f"wrote {(HERE / 'results.md').relative_to(ROOT)} and results.json ({len(rows)} rows)")
    failed = [name for name in names if runs[name]["status"] != 0]
    if failed:
        raise SystemExit(f"benchmarks that failed: {', '.join(failed)} (their logs are in bench/logs/)")


if __name__ == "__main__":
    main()
