"""`selma prompts`: grow RUN_DIR/prompts/<skill>.jsonl to COUNT diverse prompts (resumes)."""

from __future__ import annotations

import argparse
import sys

from ..prompts.generation import PromptGenConfig, generate_prompts
from ..prompts.skills import load_skills_file, resolve_skill
from .llm_args import add_llm_arguments, llm_config_from_args
from .progress import TqdmProgress

EXIT_INCOMPLETE = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", required=True, help="the run directory (created if missing)")
    parser.add_argument(
        "--skill", action="append", required=True, help="built-in skill name or a skill JSON file; repeatable"
    )
    parser.add_argument("--skills-file", help="JSON file of custom skills; --skill then picks from it by name")
    parser.add_argument("--count", type=int, required=True, help="kept prompts wanted per skill")
    parser.add_argument("--threshold", type=float, default=0.8, help="ROUGE-L keep threshold in (0, 1]")
    parser.add_argument("--concurrency", type=int, default=8, help="LLM calls in flight")
    parser.add_argument("--max-calls", type=int, default=0, help="call budget per skill (0 = automatic)")
    parser.add_argument("--seed", type=int, default=0)
    add_llm_arguments(parser)


def run(args: argparse.Namespace) -> int:
    custom = {s.name: s for s in load_skills_file(args.skills_file)} if args.skills_file else {}
    skills = [custom[name] if name in custom else resolve_skill(name) for name in args.skill]
    llm = llm_config_from_args(args)
    config = PromptGenConfig(
        count=args.count,
        threshold=args.threshold,
        concurrency=args.concurrency,
        max_calls=args.max_calls,
        seed=args.seed,
    )
    status = 0
    for skill in skills:
        with TqdmProgress(desc=f"prompts/{skill.name}", unit="prompt") as progress:
            result = generate_prompts(skill, llm, args.run_dir, config, on_progress=progress)
        print(result.summary())
        if not result.complete:
            print(
                f"selma prompts: {skill.name}: the call budget ran out before {args.count} prompts; the "
                "kept ones are saved. Rerun to continue, or raise --max-calls / --threshold.",
                file=sys.stderr,
            )
            status = EXIT_INCOMPLETE
    return status
