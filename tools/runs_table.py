"""One markdown table over the scoreboards of several runs (README's data-source comparison is made with it).

    python tools/runs_table.py runs/shapes runs/shapes-filtered runs/shapes-renderer [--metric dsg]

Per run and skill: n, the base model's mean, and each of its own expert, the merged expert and the joint LoRA as
`mean (vs base [95% interval])`, from `<run>/evaluation/scoreboard.json` (written by the evaluate stage).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

VARIANTS = ("own expert", "merged", "joint")


def _cell(row: dict | None) -> str:
    if row is None:
        return "—"
    vs = row.get("vs_base")
    if not vs:
        return f"{row['mean']:.3f}"
    return f"{row['mean']:.3f} ({vs['mean']:+.3f} [{vs['ci_low']:+.3f}, {vs['ci_high']:+.3f}])"


def run_rows(run: Path, metric: str) -> list[str]:
    path = run / "evaluation" / "scoreboard.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run the evaluate stage of {run} first (`selma run CONFIG`)")
    rows = [r for r in json.loads(path.read_text(encoding="utf-8"))["rows"] if r["metric"] == metric]
    if not rows:
        raise SystemExit(f"{path} has no {metric!r} rows")
    by_key = {(r["skill"], r["variant"]): r for r in rows}
    lines = []
    for skill in dict.fromkeys(r["skill"] for r in rows):
        base = by_key[(skill, "base")]
        cells = [_cell(by_key.get((skill, variant))) for variant in (skill, "merged", "joint")]
        lines.append(f"| {run.name} | {skill} | {base['n']} | {base['mean']:.3f} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (each with evaluation/scoreboard.json)")
    parser.add_argument("--metric", default="dsg", help="a metric of the scoreboards (default: dsg)")
    args = parser.parse_args(argv)
    print("| run | skill | n | base | " + " | ".join(f"{v} (vs base)" for v in VARIANTS) + " |")
    print("|---|---|---:|---|" + "---|" * len(VARIANTS))
    for run in args.runs:
        print("\n".join(run_rows(run, args.metric)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
