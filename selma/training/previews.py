"""Sample previews during training: a few images rendered with the adapter as it is at that step."""

from __future__ import annotations

import logging
from pathlib import Path

from ..atomic_files import write_bytes_atomic
from .backend import DenoiserBackend, PreviewRenderer
from .config import TrainConfig

log = logging.getLogger(__name__)


def preview_path(folder: Path, step: int, index: int) -> Path:
    return folder / f"step{step:06d}_{index}.png"


def save_previews(
    backend: DenoiserBackend, prompts: list[str], step: int, folder: str | Path, config: TrainConfig
) -> list[Path]:
    """Render `prompts` (same seed at every step, so previews compare) into `folder`; [] if the backend
    cannot render."""
    import io

    import torch

    if not isinstance(backend, PreviewRenderer):
        log.info("%s cannot render previews; skipping them", type(backend).__name__)
        return []
    with torch.no_grad():
        images = backend.render_previews(
            prompts, seed=config.seed, resolution=config.resolution, num_inference_steps=config.preview_inference_steps
        )
    paths = []
    for index, image in enumerate(images):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        path = preview_path(Path(folder), step, index)
        write_bytes_atomic(path, buffer.getvalue())
        paths.append(path)
    return paths
