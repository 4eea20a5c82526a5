"""`selma skills`: list the built-in skills, or print one as JSON (a starting point for your own)."""

from __future__ import annotations

import argparse
import json

from ..prompts.skills import builtin_skill, builtin_skill_names, resolve_skill


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("skill", nargs="?", help="a built-in skill name or a skills JSON file to show")


def run(args: argparse.Namespace) -> int:
    if args.skill:
        print(json.dumps(resolve_skill(args.skill).to_dict(), indent=2, ensure_ascii=False))
        return 0
    for name in builtin_skill_names():
        print(f"{name:20s} {builtin_skill(name).description}")
    return 0
