"""Render held-out prompts with every variant (base, each expert, merged, joint) for scoring.

    EVAL_DIR/images/<skill>/<variant>/<row>.png

Row r of a skill is rendered from seed `config.seed + r` by every variant, so the paired differences of the
scoreboard compare the same prompt and starting noise. Resumes: an image already on disk and newer than its
expert file is kept, so a rerun (or a new variant) renders only what is missing. Each PNG is written
atomically.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..atomic_files import write_bytes_atomic
from .comparison import CompareConfig, ExpertColumns
from .scoring import EvalImage

ProgressFn = Callable[[int, int], None]


def variant_image_path(eval_dir: str | Path, skill: str, variant: str, row: int) -> Path:
    return Path(eval_dir) / "images" / skill / variant / f"{row:03d}.png"


def _fresh(image: Path, expert: Path | None) -> bool:
    if not image.is_file():
        return False
    return expert is None or image.stat().st_mtime_ns >= expert.stat().st_mtime_ns


def plan_images(
    eval_dir: str | Path,
    variants: Mapping[str, Path | None],
    records: Mapping[str, Sequence[Mapping]],
    config: CompareConfig,
) -> tuple[list[EvalImage], list[EvalImage]]:
    """(every image of the evaluation, the ones still to render)."""
    for label, expert in variants.items():
        if expert is not None and not Path(expert).is_file():
            raise FileNotFoundError(f"the {label!r} expert {expert} does not exist; train (or merge) it first")
    images, todo = [], []
    for skill, rows in records.items():
        if not rows:
            raise ValueError(f"skill {skill!r} has no held-out prompt to evaluate; give it prompts or drop the skill")
        for variant, expert in variants.items():
            for r, record in enumerate(rows):
                path = variant_image_path(eval_dir, skill, variant, r)
                image = EvalImage(skill, variant, record["prompt"], config.seed + r, path, record)
                images.append(image)
                if not _fresh(path, Path(expert) if expert else None):
                    todo.append(image)
    return images, todo


def render_variant_images(
    pipe: Any,
    variants: Mapping[str, Path | None],
    todo: Sequence[EvalImage],
    config: CompareConfig,
    on_progress: ProgressFn | None = None,
) -> int:
    """Render the `todo` images (from `plan_images`), one adapter switch per variant; returns how many."""
    import torch

    if not todo:
        return 0
    needed = {v: variants[v] for v in dict.fromkeys(i.variant for i in todo)}
    size = {"height": config.resolution, "width": config.resolution} if config.resolution else {}
    done = 0
    with ExpertColumns(pipe, needed) as columns:
        for variant in needed:
            columns.use(variant)
            for image in (i for i in todo if i.variant == variant):
                out = pipe(
                    image.prompt,
                    negative_prompt=config.negative_prompt or None,
                    num_inference_steps=config.steps,
                    guidance_scale=config.guidance,
                    generator=torch.Generator("cpu").manual_seed(image.seed),
                    **size,
                )
                buffer = io.BytesIO()
                out.images[0].save(buffer, format="PNG")
                write_bytes_atomic(image.path, buffer.getvalue())
                done += 1
                if on_progress:
                    on_progress(done, len(todo))
    return done
