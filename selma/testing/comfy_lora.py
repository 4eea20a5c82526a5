"""Stock LoraLoader's code path for tests in a real ComfyUI (ComfyUI's modules on sys.path): which keys it skipped."""

from __future__ import annotations

import logging
from pathlib import Path


def lora_keys_loaded(model, path: str | Path) -> tuple[object, list[str]]:
    """(the patched MODEL, the "lora key not loaded" messages ComfyUI logged) for LoRA file `path` on `model`,
    loaded as LoraLoader loads it (load_torch_file + load_lora_for_models, strength 1)."""
    import comfy.sd
    import comfy.utils

    skipped: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record):
            if "lora key not loaded" in record.getMessage():
                skipped.append(record.getMessage())

    handler = Catch()
    logging.getLogger().addHandler(handler)
    try:
        patched, _ = comfy.sd.load_lora_for_models(model, None, comfy.utils.load_torch_file(str(path)), 1.0, 0)
    finally:
        logging.getLogger().removeHandler(handler)
    return patched, skipped
