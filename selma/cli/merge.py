"""`selma merge`: merge skill experts into one multi-skill expert (SELMA's fourth stage).

    selma merge experts/counting.safetensors experts/spatial.safetensors -o experts/merged.safetensors
    selma merge A.safetensors B.safetensors --method svd --rank 128 --weights 0.7,0.3 -o merged.safetensors --check

Writes the merged expert (the recipe in its header) and a report (OUT.report.json by default: per module the
rank, the energy kept and the relative error), and prints a short summary.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..merging.config import METHODS, MergeConfig, parse_weights
from .progress import TqdmProgress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = MergeConfig()
    parser.add_argument("experts", nargs="*", metavar="EXPERT", help="expert .safetensors files, in weight order")
    parser.add_argument(
        "--method",
        choices=(*METHODS, "average"),
        default=d.method,
        help="linear: SELMA's exact weighted average (default); cat: exact, weights 1; svd: the sum compressed to "
        "--rank; ties / dare / magnitude: pruned per expert, then compressed. StyleInject experts: linear / cat "
        "stack them exactly, average (StyleInject only) averages the parameters of experts with one init",
    )
    parser.add_argument(
        "--weights", help="comma-separated, one per expert (default: 1/K; 1 for cat and ties), e.g. 0.5,0.5"
    )
    parser.add_argument("--rank", type=int, help="target rank per module (default: exact, or the inputs' rank)")
    parser.add_argument(
        "--density", type=float, default=d.density, help=f"fraction kept by ties/dare/magnitude ({d.density})"
    )
    parser.add_argument("--seed", type=int, default=d.seed, help=f"seed of dare's drops (default {d.seed})")
    parser.add_argument("-o", "--output", required=True, help="the merged expert, OUT.safetensors")
    parser.add_argument("--report", help="the report JSON (default: OUT.report.json next to the output)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace OUT even if it holds another merge (without it, only a rerun of the same recipe replaces it)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="self-check: one expert merged alone returns it; an exact merge equals the weighted sum",
    )


def _methods(paths: list[Path]) -> set[str]:
    """The methods the expert files' headers name (missing files are reported by the merge itself)."""
    from ..experts.ref import ExpertRef

    return {ExpertRef.from_file(p).method for p in paths if p.is_file()}


def _run_style_inject(args: argparse.Namespace, paths: list[Path], methods: set[str]) -> int:
    from ..experts.ref import STYLE_INJECT_METHOD, ExpertRef
    from ..merging.style_inject_merge import StyleInjectMergeConfig, merge_style_inject_files

    if methods != {STYLE_INJECT_METHOD}:
        first = next(p for p in paths if p.is_file() and ExpertRef.from_file(p).method == STYLE_INJECT_METHOD)
        others = ", ".join(sorted(methods - {STYLE_INJECT_METHOD}))
        raise ValueError(
            f"{first} is a 'styleinject' expert; only LoRA experts can be merged here with {others} experts: merge "
            "StyleInject experts with each other (stacked or averaged) and LoRA experts with each other"
        )
    unused = [flag for flag, given in (("--rank", args.rank is not None), ("--check", args.check)) if given]
    if unused:
        raise ValueError(f"{', '.join(unused)} apply to LoRA merges only; leave them out for StyleInject experts")
    config = StyleInjectMergeConfig(method=args.method, weights=parse_weights(args.weights))
    try:
        with TqdmProgress(desc=f"merge/styleinject-{args.method}", unit="module") as progress:
            merged = merge_style_inject_files(
                paths, config, args.output, report_path=args.report, on_progress=progress
            )
    except FileNotFoundError as e:
        raise ValueError(f"{e}; check the paths (experts are .safetensors files)") from None
    print(merged.summary())
    print(f"wrote {args.output}")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..merging.merge_files import merge_expert_files

    paths = [Path(p) for p in args.experts]
    methods = _methods(paths)
    if "styleinject" in methods:  # StyleInject experts merge by stacking or averaging, not by ΔW
        return _run_style_inject(args, paths, methods)
    if args.method == "average":
        raise ValueError("--method average is for StyleInject experts; LoRA experts average exactly with linear")
    config = MergeConfig(
        method=args.method, weights=parse_weights(args.weights), rank=args.rank, density=args.density, seed=args.seed
    )
    try:
        with TqdmProgress(desc=f"merge/{args.method}", unit="module") as progress:
            merged = merge_expert_files(
                [Path(p) for p in args.experts],
                config,
                args.output,
                report_path=args.report,
                check=args.check,
                overwrite=args.overwrite,
                on_progress=progress,
            )
    except FileNotFoundError as e:
        raise ValueError(f"{e}; check the paths (experts are .safetensors files)") from None
    print(merged.summary())
    if args.check and config.compresses:
        print(f"check linear equals the weighted sum: not run ({args.method} compresses; see the relative errors)")
    if not merged.passed:
        print("a self-check FAILED: the merged file is written, but do not trust it; please report this")
        return 1
    return 0
