"""`selma run CONFIG`: the whole pipeline from a JSON or TOML config (see examples/selma_run.toml).

    selma run examples/selma_run.toml
    selma run my_run.toml --stages prompts,images   # only some stages (each resumes)

The config is validated before any work starts; every stage resumes, so rerunning a finished run does nothing.
"""

from __future__ import annotations

import argparse

from .progress import TqdmProgress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="the run config, a .toml or .json file")
    parser.add_argument(
        "--stages", help="comma-separated subset of prompts,images,train,merge,compare (default: all, in order)"
    )


class StageBars:
    """One tqdm bar per progress label ('images/counting'); a new label closes the previous bar."""

    def __init__(self) -> None:
        self.label: str | None = None
        self.bar: TqdmProgress | None = None

    def __call__(self, label: str, done: int, total: int) -> None:
        if label != self.label:
            self.close()
            self.label, self.bar = label, TqdmProgress(desc=label, unit="it")
        self.bar(done, total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
        self.label, self.bar = None, None


def run_stages(config, stages: tuple[str, ...]) -> int:
    """Run a validated RunConfig's `stages` with progress bars and print where every artifact is."""
    from ..pipeline.runner import run_pipeline

    bars = StageBars()
    try:
        result = run_pipeline(config, stages=tuple(stages), on_progress=bars)
    finally:
        bars.close()
    for stage in result.stages:
        print(f"[{stage.name}]")
        for line in stage.lines:
            print(f"  {line}")
    print(f"\nartifacts (run dir {result.run_dir}):")
    print(result.artifact_table())
    if not result.did_work:
        print("nothing to do: every stage was already complete")
    return 0


def run(args: argparse.Namespace) -> int:
    from ..pipeline.run_config import load_run_config
    from ..pipeline.runner import STAGES

    config = load_run_config(args.config)
    stages = STAGES if not args.stages else tuple(s.strip() for s in args.stages.split(",") if s.strip())
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"--stages: unknown stage(s) {', '.join(unknown)}; choose from {','.join(STAGES)}")
    return run_stages(config, stages)
