"""The few places where nodes touch ComfyUI itself: output folder, progress bar, Cancel.

ComfyUI modules are imported inside functions, so node modules import (and test) without ComfyUI;
outside ComfyUI the output folder is $SELMA_OUTPUT_DIR (or ./output) and progress is silent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

_RUN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def output_directory() -> Path:
    try:
        import folder_paths
    except ImportError:
        return Path(os.environ.get("SELMA_OUTPUT_DIR", "output")).resolve()
    return Path(folder_paths.get_output_directory())


def run_directory(run_name: str) -> Path:
    """`output/selma/<run_name>`: where a node's run keeps its prompts, datasets and experts."""
    if not _RUN_NAME_RE.match(run_name or "") or ".." in run_name:
        raise ValueError(
            f"run_name={run_name!r} is not a valid folder name; use letters, digits, '_', '-' or '.' (max 64)"
        )
    return output_directory() / "selma" / run_name


def progress_reporter(total: int) -> Callable[[int, int], None]:
    """An `on_progress(done, total)` for the core: moves ComfyUI's progress bar and raises on Cancel."""
    try:
        import comfy.model_management
        import comfy.utils
    except ImportError:
        return lambda done, total: None
    bar = comfy.utils.ProgressBar(total)

    def report(done: int, total: int) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        bar.update_absolute(done, total)

    return report
