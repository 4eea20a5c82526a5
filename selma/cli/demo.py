"""`selma demo`: the whole pipeline end to end on the embedded defaults, offline, on CPU.

The demo is `selma run` with a built-in config (`demo_config`): the tiny random SD model (built into
RUN_DIR/models/tiny-sd), the offline template prompt writer, two skills -> prompts -> datasets (32 px, 2 steps,
a contact sheet per skill) -> one LoRA expert per skill (rank 4) -> a StyleInject expert (2 styles) with its
routers inspected -> a joint LoRA on both skills' data (SELMA's baseline) -> an SVD merge -> the evaluation
(DSG, VQAScore, CLIPScore of base, each expert, merged and joint on held-out prompts, with tiny random answerers:
the numbers test the plumbing, not faithfulness) -> a comparison grid per skill. Demo and run share one code
path: `run_pipeline`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEMO_SKILLS = ("counting", "spatial")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", default="runs/demo", help="where the artifacts go (default runs/demo)")
    parser.add_argument("--prompts", type=int, default=12, help="prompts per skill (default 12)")
    parser.add_argument("--train-steps", type=int, default=6, help="training steps per expert (default 6)")


def demo_config(run_dir: str | Path, prompts: int = 12, train_steps: int = 6) -> dict:
    """The demo's run config, as `selma run` would read it from a file (see examples/selma_run.toml)."""
    return {
        "run_dir": str(run_dir),
        "skills": list(DEMO_SKILLS),
        "llm": {"backend": "template"},
        "prompts": {"count": prompts, "seed": 0},
        "images": {"model": "tiny", "batch_size": 8, "steps": 2, "width": 32, "height": 32, "device": "cpu"},
        "train": {
            "device": "cpu",
            "method": "lora",
            "rank": 4,
            "alpha": 4,
            "resolution": 32,
            "batch_size": 4,
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
        "merge": {"method": "svd", "rank": 4},
        "evaluate": {"enabled": True, "prompts": 2, "steps": 2, "resolution": 32, "seed": 0},
        "compare": {"prompts": 2, "steps": 2, "resolution": 32, "guidance": 7.5, "seed": 0},
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
