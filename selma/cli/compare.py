"""`selma compare`: a captioned grid of the base model vs experts, one row per prompt, the same seed per row.

    selma compare --model runs/demo/models/tiny-sd --expert base=none \\
        --expert counting=runs/demo/experts/counting.safetensors \\
        --expert merged=runs/demo/experts/merged.safetensors \\
        --prompt "three red apples" --prompt "a cat" -o grid.png
    selma compare --run-dir runs/demo        # base vs each expert vs merged, per skill, on its held-out prompts

With --run-dir the run's own config (RUN_DIR/run_config.json) says the model, skills and render settings; the grids
go to RUN_DIR/comparison/<skill>.png (redrawn only when an expert is newer, or with --force).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from .progress import TqdmProgress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", help="a `selma run`/`selma demo` run: compare its experts on held-out prompts")
    parser.add_argument("--model", help="diffusers folder, single-file checkpoint or hub id (not with --run-dir)")
    parser.add_argument(
        "--expert",
        action="append",
        default=[],
        metavar="LABEL=FILE",
        help="a column: LABEL=expert.safetensors, or LABEL=none for the base model; repeat, in column order",
    )
    parser.add_argument("--prompt", action="append", default=[], help="a row's prompt; repeat for more rows")
    parser.add_argument("-o", "--output", help="the grid PNG (explicit mode)")
    parser.add_argument("--steps", type=int, help="denoising steps (default 20, or the run's)")
    parser.add_argument("--guidance", type=float, help="CFG scale (default 7.5, or the run's)")
    parser.add_argument("--seed", type=int, help="row r uses seed + r in every column (default 0, or the run's)")
    parser.add_argument("--resolution", type=int, help="image side in pixels (default: the model's, or the run's)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps (default auto)")
    parser.add_argument("--force", action="store_true", help="--run-dir: redraw the grids even if up to date")


def parse_expert_columns(specs: list[str]) -> dict[str, str | None]:
    """`LABEL=FILE` specs -> {label: file, or None for 'none'/'base'}; labels must be unique."""
    columns: dict[str, str | None] = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label.strip() or not path.strip():
            raise ValueError(f"--expert {spec!r} must be LABEL=FILE (or LABEL=none for the base model)")
        if label.strip() in columns:
            raise ValueError(f"--expert label {label.strip()!r} is given twice; each column needs its own label")
        columns[label.strip()] = None if path.strip().lower() in ("none", "base") else path.strip()
    return columns


def _overrides(args: argparse.Namespace) -> dict:
    names = ("steps", "guidance", "seed", "resolution")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _run_dir_mode(args: argparse.Namespace) -> int:
    from ..pipeline.run_config import parse_run_config
    from ..pipeline.runner import comparison_path, run_pipeline

    run_dir = Path(args.run_dir)
    saved = run_dir / "run_config.json"
    if not saved.is_file():
        raise ValueError(f"{saved} does not exist; --run-dir needs a run made by `selma run` or `selma demo`")
    data = json.loads(saved.read_text(encoding="utf-8"))
    data["run_dir"] = str(run_dir)
    data["compare"] = {**data.get("compare", {}), "enabled": True}
    config = parse_run_config(data, base_dir=Path.cwd())
    stage = dataclasses.replace(config.compare, render=dataclasses.replace(config.compare.render, **_overrides(args)))
    config = dataclasses.replace(config, compare=stage)
    if args.force or _overrides(args):
        for skill in config.skills:
            comparison_path(run_dir, skill.name).unlink(missing_ok=True)
    with TqdmProgress(desc="compare", unit="img") as progress:
        (report,) = run_pipeline(config, stages=("compare",), on_progress=lambda _, d, t: progress(d, t)).stages
    print("\n".join(report.lines))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.run_dir:
        if args.model or args.expert or args.output:
            raise ValueError("--run-dir takes its model, experts and output from the run; drop --model/--expert/-o")
        return _run_dir_mode(args)
    from ..evaluation.comparison import compare_experts, save_grid

    missing = [
        flag
        for flag, value in (
            ("--model", args.model),
            ("--expert", args.expert),
            ("--prompt", args.prompt),
            ("-o", args.output),
        )
        if not value
    ]
    if missing:
        raise ValueError(
            f"missing {', '.join(missing)}; give --model, --expert (repeat), --prompt (repeat) and -o, "
            "or --run-dir DIR"
        )
    columns = parse_expert_columns(args.expert)
    with TqdmProgress(desc="compare", unit="img") as progress:
        grid = compare_experts(
            args.model, columns, args.prompt, device=args.device, on_progress=progress, **_overrides(args)
        )
    print(f"wrote {save_grid(grid, args.output)}: {len(args.prompt)} prompt(s) x {len(columns)} column(s)")
    return 0
