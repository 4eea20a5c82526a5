"""The `selma` command. Each subcommand lives in its own module, imported only when it runs, so
`selma --help` and `selma filter` start without torch."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from ..errors import SelmaError

# name -> (module, one-line help); each module has add_arguments(parser) and run(args) -> int
COMMANDS = {
    "prompts": ("prompts", "write skill prompts with an LLM into RUN_DIR/prompts/<skill>.jsonl"),
    "filter": ("filter", "keep the lines of a file that pass SELMA's ROUGE-L diversity filter"),
    "skills": ("skills", "list the built-in skills, or show one"),
    "images": ("images", "render RUN_DIR/prompts/<skill>.jsonl into RUN_DIR/datasets/<skill>/ (resumes)"),
    "preview": ("preview", "draw a contact sheet (thumbnails + captions) of a dataset folder"),
    "train": ("train", "train one LoRA expert per skill from RUN_DIR/datasets/<skill>/ into RUN_DIR/experts/"),
    "merge": ("merge", "merge skill experts into one multi-skill expert (+ a per-module report)"),
    "inspect": ("inspect_router", "record a StyleInject expert's routers while sampling: heatmaps, embedding, JSON"),
    "demo": ("demo", "run the pipeline end to end on the embedded defaults (tiny model, offline LLM)"),
    "run": ("run", "run the whole pipeline from a JSON/TOML config, stage by stage (resumes)"),
    "compare": ("compare", "a captioned grid: base model vs each expert vs merged, the same seed per row"),
    "eval": ("evaluate", "score images for faithfulness (DSG, VQAScore, CLIPScore) into a scoreboard"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="selma",
        description="SELMA: skill prompts -> auto-generated datasets -> skill experts -> merged expert.",
    )
    parser.add_argument("--version", action="version", version=f"selma {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        # Parsers are built lazily below; the stub keeps --help fast and lists every command.
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    known, _ = parser.parse_known_args(argv)
    if known.command is None:
        parser.print_help()
        return 0
    module = importlib.import_module(f".{COMMANDS[known.command][0]}", __name__)
    full = argparse.ArgumentParser(prog=f"selma {known.command}", description=COMMANDS[known.command][1])
    module.add_arguments(full)
    full.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    index = argv.index(known.command)
    args = full.parse_args(argv[:index] + argv[index + 1 :])
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return module.run(args)
    except (SelmaError, ValueError, FileNotFoundError) as e:  # a path that is not there: say which
        print(f"selma {known.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"selma {known.command}: interrupted; finished work is saved, rerun to resume", file=sys.stderr)
        return 130
