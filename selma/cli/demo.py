"""`selma demo`: the whole pipeline end to end on the embedded defaults, offline, on CPU.

The demo is `selma run` with a built-in config (`demo_config`) on the shipped shapes model (`model = "shapes"`,
trained by tools/train_shapes_model.py): the offline template prompt writer writes prompts for the shapes world's
three skills (counting, spatial relations, colour binding) -> the base model renders its own datasets (SELMA's
self-generated data, 64 px) -> one LoRA expert per skill -> a StyleInject expert (2 styles) with its routers
inspected -> a joint LoRA on all skills' data (SELMA's baseline) -> an SVD merge -> the evaluation (DSG and
VQAScore of base, each expert, merged and joint on held-out prompts, answered by the world's exact checker) -> a
comparison grid per skill. Demo and run share one code path: `run_pipeline`. A demo this short trains too few
steps for stable numbers; examples/shapes_run.toml is the longer version.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEMO_SKILLS = ("shapes_counting", "shapes_spatial", "shapes_colour_binding")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", default="runs/demo", help="where the artifacts go (default runs/demo)")
    parser.add_argument("--prompts", type=int, default=12, help="prompts per skill (default 12)")
    parser.add_argument("--train-steps", type=int, default=40, help="training steps per expert (default 40)")


def demo_config(run_dir: str | Path, prompts: int = 12, train_steps: int = 40) -> dict:
    """The demo's run config, as `selma run` would read it from a file (see examples/selma_run.toml)."""
    return {
        "run_dir": str(run_dir),
        "skills": list(DEMO_SKILLS),
        "llm": {"backend": "template"},
        "prompts": {"count": prompts, "seed": 0},
        "images": {
            "model": "shapes",
            "batch_size": 12,
            "steps": 20,
            "guidance": 5.0,
            "width": 64,
            "height": 64,
            "device": "cpu",
        },
        "train": {
            "device": "cpu",
            "method": "lora",
            "rank": 8,
            "alpha": 8,
            "learning_rate": 5e-4,
            "resolution": 64,
            "batch_size": 8,
            "grad_accum": 1,
            "steps": train_steps,
            "save_every": train_steps,
        },
        "styleinject": {
            "enabled": True,
            "skill": DEMO_SKILLS[0],
            "num_styles": 2,
            "target_modules": ["to_q", "to_v"],  # the StyleInject paper's targets
            "inspect_prompts": 2,
            "inspect_steps": 2,
        },
        "joint": {"enabled": True},  # SELMA's baseline: one LoRA on both skills' data
        "merge": {"method": "svd", "rank": 8},
        "evaluate": {"enabled": True, "prompts": 8, "steps": 20, "guidance": 5.0, "resolution": 64, "seed": 0},
        "compare": {"prompts": 4, "steps": 20, "resolution": 64, "guidance": 5.0, "seed": 0},
    }


def _config(run_dir: str | Path, **kwargs):
    from ..pipeline.run_config import parse_run_config

    return parse_run_config(demo_config(run_dir, **kwargs), base_dir=Path.cwd())


def render_datasets(run_dir: Path) -> list[tuple[str, Path]]:
    """Only the demo's images stage (prompts must exist): datasets/<skill>/ and a contact sheet beside each."""
    from ..pipeline.runner import run_pipeline

    (report,) = run_pipeline(_config(run_dir), stages=("images",)).stages
    for line in report.lines:
        print(line)
    return report.artifacts


def run(args: argparse.Namespace) -> int:
    from ..pipeline.runner import STAGES
    from .run import run_stages

    return run_stages(_config(args.run_dir, prompts=args.prompts, train_steps=args.train_steps), STAGES)
