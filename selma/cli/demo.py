"""`selma demo`: the pipeline end to end on the embedded defaults, offline, on CPU.

Stages so far: skills -> prompts (template LLM, ROUGE-L filter). Later stages join as they land.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..prompt_generation import PromptGenConfig, generate_prompts
from ..skills import builtin_skill
from .progress import TqdmProgress

DEMO_SKILLS = ("counting", "spatial")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", default="runs/demo", help="where the artifacts go (default runs/demo)")
    parser.add_argument("--prompts", type=int, default=40, help="prompts per skill (default 40)")


def run(args: argparse.Namespace) -> int:
    from ..llm import LLMConfig

    run_dir = Path(args.run_dir)
    artifacts = []
    for name in DEMO_SKILLS:
        skill = builtin_skill(name)
        with TqdmProgress(desc=f"prompts/{name}", unit="prompt") as progress:
            result = generate_prompts(
                skill, LLMConfig(), run_dir, PromptGenConfig(count=args.prompts), on_progress=progress
            )
        print(result.summary())
        artifacts += [("skill", run_dir / "skills" / f"{name}.json"), ("prompts", result.path)]
    print("\nartifacts:")
    for kind, path in artifacts:
        print(f"  {kind:8s} {path}")
    return 0
