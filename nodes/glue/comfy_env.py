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


def loras_directory() -> Path:
    """models/loras (the first one, if several are configured): where experts are published."""
    try:
        import folder_paths
    except ImportError:
        return Path(os.environ.get("SELMA_LORAS_DIR", "models/loras")).resolve()
    return Path(folder_paths.get_folder_paths("loras")[0])


def send_to_ui(event: str, data: dict) -> None:
    """Push a message to the browser (the web/ extension draws it); a no-op outside ComfyUI."""
    try:
        from server import PromptServer
    except ImportError:
        return
    if PromptServer.instance is not None:
        PromptServer.instance.send_sync(event, data)


def lora_file_names() -> list[str]:
    """The files ComfyUI lists in models/loras (outside ComfyUI: those under $SELMA_LORAS_DIR)."""
    try:
        import folder_paths
    except ImportError:
        root = loras_directory()
        return sorted(str(p.relative_to(root)) for p in root.rglob("*.safetensors")) if root.is_dir() else []
    return folder_paths.get_filename_list("loras")


def lora_file_path(name: str) -> Path:
    """The full path of a file named as in models/loras; a clear error if it is not there."""
    try:
        import folder_paths
    except ImportError:
        path = loras_directory() / name
    else:
        found = folder_paths.get_full_path("loras", name)
        path = Path(found) if found else loras_directory() / name
    if not path.is_file():
        raise ValueError(f"expert {name!r} is not in models/loras ({path}); train or copy it there, then refresh")
    return path
