"""`selma filter`: print the lines that pass the ROUGE-L diversity filter."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..prompts.diversity import DiversityFilter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="one candidate per line (default: standard input)")
    parser.add_argument("--threshold", type=float, default=0.8, help="keep iff max ROUGE-L F <= T (default 0.8)")
    parser.add_argument("--pool", action="append", default=[], help="lines already kept (e.g. seeds); repeatable")
    parser.add_argument("--scores", action="store_true", help="print 'score<TAB>line' instead of the line")


def _lines(path: str | None) -> list[str]:
    if path is None or path == "-":
        text = sys.stdin.read()
    else:
        file = Path(path)
        if not file.is_file():
            raise ValueError(f"{path} does not exist or is not a file")
        text = file.read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def run(args: argparse.Namespace) -> int:
    pool = [line for path in args.pool for line in _lines(path)]
    diversity = DiversityFilter(args.threshold, pool=pool)
    out = sys.stdout
    for line in _lines(args.file):
        keep, score = diversity.offer(line)
        if keep:
            out.write(f"{score:.6f}\t{line}\n" if args.scores else f"{line}\n")
    out.flush()
    return 0
