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


def check_run_name(run_name: str | None = None) -> bool | str:
    """A VALIDATE_INPUTS for nodes with a run_name widget: ComfyUI shows the message before the graph runs, not
    after an hour of rendering. None (the input is linked, its value unknown yet) passes; the node checks it."""
    if run_name is None:
        return True
    try:
        run_directory(run_name.strip())
    except ValueError as error:
        return str(error)
    return True


def file_fingerprint(path: Path | None) -> str:
    """What IS_CHANGED returns for a node that reads a file: it changes when the file is rewritten (a retrained
    expert under the same name, images appended to a dataset), so ComfyUI does not reuse a stale output."""
    if path is None or not path.exists():
        return "missing"
    stat = path.stat()
    return f"{stat.st_mtime_ns}:{stat.st_size}"


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


# Experts live in two ComfyUI model folders: LoRA experts in models/loras (where stock LoraLoader finds them) and
# StyleInject experts in models/styleinject, which we register. Stock LoraLoader lists every file in models/loras
# and cannot apply a StyleInject file (768 "lora key not loaded" lines, nothing applied), so none goes there.
LORAS, STYLE_INJECT = "loras", "styleinject"
_FOLDERS = {LORAS: ("SELMA_LORAS_DIR", "models/loras"), STYLE_INJECT: ("SELMA_STYLEINJECT_DIR", "models/styleinject")}


def register_model_folders() -> None:
    """Give ComfyUI a `styleinject` model folder (models/styleinject, or the paths of extra_model_paths.yaml)."""
    try:
        import folder_paths
    except ImportError:
        return
    default = os.path.join(folder_paths.models_dir, STYLE_INJECT)
    folder_paths.folder_names_and_paths.setdefault(STYLE_INJECT, ([default], {".safetensors"}))


def model_directory(folder: str) -> Path:
    """The first configured path of a model folder (models/loras, models/styleinject): where experts are published."""
    try:
        import folder_paths
    except ImportError:
        variable, default = _FOLDERS[folder]
        return Path(os.environ.get(variable, default)).resolve()
    register_model_folders()
    return Path(folder_paths.get_folder_paths(folder)[0])


def loras_directory() -> Path:
    return model_directory(LORAS)


def _file_names(folder: str) -> list[str]:
    try:
        import folder_paths
    except ImportError:
        root = model_directory(folder)
        return sorted(str(p.relative_to(root)) for p in root.rglob("*.safetensors")) if root.is_dir() else []
    register_model_folders()
    return folder_paths.get_filename_list(folder)


def _full_path(folder: str, name: str) -> Path | None:
    try:
        import folder_paths
    except ImportError:
        path = model_directory(folder) / name
        return path if path.is_file() else None
    register_model_folders()
    found = folder_paths.get_full_path(folder, name)
    return Path(found) if found else None


_methods: dict[Path, tuple[float, int, str | None]] = {}


def expert_method(path: Path) -> str | None:
    """'lora' or 'styleinject' from a file's header (a foreign LoRA counts as 'lora'); None if it is not a readable
    .safetensors file. Cached by modification time and size: ComfyUI asks for the lists on every page load."""
    from ...selma.experts.ref import LORA_METHOD, read_header

    stat = path.stat()
    cached = _methods.get(path)
    if cached and cached[:2] == (stat.st_mtime, stat.st_size):
        return cached[2]
    method = LORA_METHOD  # .pt / .ckpt LoRAs have no header to read; ComfyUI loads them as LoRAs
    if path.suffix == ".safetensors":
        try:
            method = read_header(path).get("selma.method") or LORA_METHOD
        except (OSError, ValueError):
            method = None
    _methods[path] = (stat.st_mtime, stat.st_size, method)
    return method


def expert_file_names(method: str) -> list[str]:
    """The files a loader of `method` experts can load, by header: for 'lora', every LoRA in models/loras (foreign
    ones included, StyleInject files left out); for 'styleinject', models/styleinject plus StyleInject files that
    older versions published in models/loras."""
    names: list[str] = []
    for folder in _folders_of(method):
        for name in _file_names(folder):
            path = _full_path(folder, name)
            if path is not None and name not in names and expert_method(path) == method:
                names.append(name)
    return names


def expert_file_path(name: str, method: str) -> Path:
    """The full path of an expert file named as its loader lists it; a clear error if it is absent or of the other
    kind."""
    folders = _folders_of(method)
    other = None
    for folder in folders:
        path = _full_path(folder, name)
        found = expert_method(path) if path is not None else None
        if found == method:
            return path
        other = other or (found and (path, found))
    if other:
        loader = "SELMA Load Expert or LoraLoader" if other[1] == "lora" else "SELMA Load StyleInject"
        raise ValueError(f"{other[0]} holds a {other[1]!r} expert, not a {method!r} one; load it with {loader}")
    where = " or ".join(f"models/{f} ({model_directory(f)})" for f in folders)
    raise FileNotFoundError(f"expert {name!r} is not in {where}; train or copy it there, then refresh")


def _folders_of(method: str) -> tuple[str, ...]:
    from ...selma.experts.ref import LORA_METHOD, STYLE_INJECT_METHOD

    if method == STYLE_INJECT_METHOD:
        return STYLE_INJECT, LORAS
    if method == LORA_METHOD:
        return (LORAS,)
    raise ValueError(f"no loader lists {method!r} experts; expected 'lora' or 'styleinject'")


def send_to_ui(event: str, data: dict) -> None:
    """Push a message to the browser (the web/ extension draws it); a no-op outside ComfyUI."""
    try:
        from server import PromptServer
    except ImportError:
        return
    if PromptServer.instance is not None:
        PromptServer.instance.send_sync(event, data)
