"""`selma eval`: faithfulness numbers — DSG, VQAScore, CLIPScore — and a scoreboard.

    selma eval --run-dir runs/demo         # the run's evaluation stage: every variant on held-out prompts
    selma eval --images out/base --images out/merged --prompts prompts.txt \\
        --answerer transformers=Qwen/Qwen2-VL-2B-Instruct --clip-model openai/clip-vit-large-patch14 -o scores/

With --run-dir the run's config (RUN_DIR/run_config.json) says everything; the flags below override its
[evaluate] settings. In the explicit mode each --images folder is one variant (its name is the label, or
LABEL=FOLDER), holding one image per line of --prompts in name order; the first is the base the others are
compared with. DSG questions come from --llm. Under `accelerate launch selma eval ...` each process answers its
share into the same answers.jsonl (one GPU per process) and the main process writes the scoreboard.
A second run asks the answerers nothing they answered before (OUT/answers.jsonl).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from .answerer_args import add_answerer_arguments, answerer_from_args
from .llm_args import add_llm_arguments, llm_config_from_args
from .progress import TqdmProgress

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", help="a `selma run`/`selma demo` run: evaluate every variant on held-out prompts")
    parser.add_argument("--images", action="append", default=[], metavar="[LABEL=]FOLDER", help="a variant's images")
    parser.add_argument("--prompts", help="a text file, one prompt per line (explicit mode)")
    parser.add_argument("--skill", default="custom", help="the skill name the explicit mode reports under")
    parser.add_argument("-o", "--output", help="output folder (explicit mode): answers, scoreboard")
    add_answerer_arguments(parser, "e.g. transformers=FOLDER, blip=ID, openai=gpt-4o")
    parser.add_argument("--clip-model", help="CLIP hub id or folder for CLIPScore")
    parser.add_argument("--metrics", help="comma-separated: dsg,vqascore,clipscore (default: all)")
    parser.add_argument("--batch-size", type=int, default=8, help="answerer pairs per call (default 8)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps (default auto)")
    add_llm_arguments(parser)


def _answerer(args: argparse.Namespace):
    return answerer_from_args(args, batch_size=args.batch_size)


def _metrics(args: argparse.Namespace) -> tuple[str, ...] | None:
    return tuple(m.strip() for m in args.metrics.split(",") if m.strip()) if args.metrics else None


def _run_dir_mode(args: argparse.Namespace) -> int:
    from ..pipeline.run_config import parse_run_config
    from ..pipeline.runner import run_pipeline

    run_dir = Path(args.run_dir)
    saved = run_dir / "run_config.json"
    if not saved.is_file():
        raise ValueError(f"{saved} does not exist; --run-dir needs a run made by `selma run` or `selma demo`")
    data = json.loads(saved.read_text(encoding="utf-8"))
    data["run_dir"] = str(run_dir)
    section = {k: v for k, v in data.get("evaluate", {}).items() if k != "enabled"}
    overrides = {"answerer": _answerer(args), "clip_model": args.clip_model, "metrics": _metrics(args)}
    section.update({k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v
                    for k, v in overrides.items() if v is not None})  # fmt: skip
    data["evaluate"] = {**section, "enabled": True}
    config = parse_run_config(data, base_dir=Path.cwd())
    with TqdmProgress(desc="evaluate", unit="item") as progress:
        (report,) = run_pipeline(config, stages=("evaluate",), on_progress=lambda _, d, t: progress(d, t)).stages
    print("\n".join(report.lines))
    return 0


def _variant_folders(specs: list[str]) -> dict[str, Path]:
    folders: dict[str, Path] = {}
    for spec in specs:
        label, sep, folder = spec.partition("=")
        path = Path(folder if sep else spec)
        label = label.strip() if sep else path.name
        if label in folders:
            raise ValueError(f"--images label {label!r} is given twice; name them LABEL=FOLDER")
        if not path.is_dir():
            raise ValueError(f"--images {spec!r}: {path} is not a folder of images")
        folders[label] = path
    return folders


def _explicit_mode(args: argparse.Namespace) -> int:
    from ..evaluation.scoreboard import build_scoreboard, scoreboard_markdown, write_scoreboard
    from ..evaluation.scoring import METRICS, EvalConfig, EvalImage, score_images

    missing = [
        flag for flag, v in (("--images", args.images), ("--prompts", args.prompts), ("-o", args.output)) if not v
    ]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}; give --images (repeat), --prompts and -o, or --run-dir DIR")
    prompts = [line.strip() for line in Path(args.prompts).read_text(encoding="utf-8").splitlines() if line.strip()]
    images = []
    variants = _variant_folders(args.images)
    for label, folder in variants.items():
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(files) != len(prompts):
            raise ValueError(
                f"{folder} holds {len(files)} image(s) but {args.prompts} has {len(prompts)} prompt(s); give one "
                "image per prompt, in the same order (sorted by file name)"
            )
        images += [EvalImage(args.skill, label, p, r, f) for r, (p, f) in enumerate(zip(prompts, files, strict=True))]
    from .images import process_share

    state, device = process_share(args.device)
    answerer = _answerer(args)
    if answerer is not None:
        answerer = dataclasses.replace(answerer, device=device)
    config = EvalConfig(metrics=_metrics(args) or METRICS, answerer=answerer, clip_model=args.clip_model or "",
                        llm=llm_config_from_args(args), device=device)  # fmt: skip
    base = next(iter(variants))  # the first folder is what the others are compared with
    with TqdmProgress(desc="evaluate", unit="item") as progress:
        scores, cache = score_images(
            images, config, args.output, on_progress=lambda _, d, t: progress(d, t) if state.is_main_process else None,
            shard=(state.process_index, state.num_processes), barrier=state.wait_for_everyone,
        )  # fmt: skip
    if not state.is_main_process:
        return 0
    rows = build_scoreboard(scores, base=base)
    paths = write_scoreboard(rows, args.output, f"{len(prompts)} prompt(s) x {len(args.images)} variant(s)")
    print(scoreboard_markdown(rows).rstrip())
    print(f"{cache.calls} answerer call(s); wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.run_dir:
        if args.images or args.prompts or args.output:
            raise ValueError("--run-dir takes its images, prompts and output from the run; drop --images/--prompts/-o")
        return _run_dir_mode(args)
    return _explicit_mode(args)
