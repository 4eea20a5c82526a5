"""The comparison grid: base model vs each skill expert vs the merged expert, on prompts not used in training.

Rows are prompts, columns are models (``base``, one column per expert); every image of a row is rendered from
the same seed, so a difference between two cells comes from the expert alone. Each LoRA expert is loaded into
the pipeline's UNet once, as its own PEFT adapter; a column only switches the active adapter (or disables
them for the base column), so the UNet is never reloaded.

`draw_comparison_grid` is PIL only: the CLI and the SelmaCompareGrid node (which gets its images from
ComfyUI's own sampler) draw the same grid.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from ..atomic_files import write_bytes_atomic
from ..datasets.contact_sheet import BACKGROUND, INK, MISSING, PAD, _font, _line_height, wrap_caption
from ..models.pipelines import denoiser_of

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
BASE_LABELS = ("none", "base", "")  # an expert path spelled like this means "no expert": the base model
_ADAPTER_PREFIX = "selma_compare_"


@dataclass(frozen=True)
class CompareConfig:
    steps: int = field(default=20, metadata={"help": "denoising steps per image"})
    guidance: float = field(default=7.5, metadata={"help": "classifier-free guidance scale"})
    seed: int = field(default=0, metadata={"help": "row r is rendered from seed + r in every column"})
    resolution: int | None = field(default=None, metadata={"help": "image side in pixels; None = the model's size"})
    negative_prompt: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= 1000:
            raise ValueError(f"CompareConfig.steps={self.steps!r} must be an integer in 1..1000")
        if (
            isinstance(self.guidance, bool)
            or not isinstance(self.guidance, int | float)
            or not 0 <= self.guidance < 100
        ):
            raise ValueError(f"CompareConfig.guidance={self.guidance!r} must be a number in [0, 100)")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**62:
            raise ValueError(f"CompareConfig.seed={self.seed!r} must be an integer in 0..2**62-1")
        res = self.resolution
        if res is not None and (isinstance(res, bool) or not isinstance(res, int) or res < 8 or res % 8):
            raise ValueError(
                f"CompareConfig.resolution={res!r} must be a positive multiple of 8 (pixels), or None for the "
                "model's native size"
            )


def draw_comparison_grid(
    rows: Sequence[Sequence[Image.Image | None]],
    column_labels: Sequence[str],
    row_captions: Sequence[str],
    *,
    cell_size: int = 160,
    caption_lines: int = 2,
    title: str = "",
) -> Image.Image:
    """A captioned grid: one header per column, then per row its images side by side with the row's caption
    (the prompt) underneath, across the whole row. An image of None draws a grey 'missing' tile."""
    if not rows:
        raise ValueError("draw_comparison_grid needs at least one row of images")
    columns = len(column_labels)
    if columns < 1:
        raise ValueError("draw_comparison_grid needs at least one column label")
    bad = [r for r, row in enumerate(rows) if len(row) != columns]
    if bad:
        raise ValueError(
            f"row {bad[0]} has {len(rows[bad[0]])} image(s) but there are {columns} column label(s) "
            f"({', '.join(column_labels)}); give one label per column"
        )
    if len(row_captions) != len(rows):
        raise ValueError(f"{len(row_captions)} caption(s) for {len(rows)} row(s); give one prompt per row")
    if cell_size < 16 or caption_lines < 1:
        raise ValueError(f"cell_size={cell_size} must be >= 16 and caption_lines={caption_lines} >= 1")
    font = _font(max(10, cell_size // 12))
    line_h = _line_height(font)
    cell = cell_size + PAD
    width = PAD + columns * cell
    title_h = line_h + PAD if title else 0
    header_h = line_h + PAD
    row_h = cell + caption_lines * line_h + PAD
    grid = Image.new("RGB", (width, title_h + header_h + len(rows) * row_h), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    if title:
        draw.text((PAD, PAD // 2), wrap_caption(title, font, width - 2 * PAD, 1)[0], fill=INK, font=font)
    for c, label in enumerate(column_labels):
        draw.text(
            (PAD + c * cell, title_h + PAD // 2), wrap_caption(label, font, cell_size, 1)[0], fill=INK, font=font
        )
    for r, (row, caption) in enumerate(zip(rows, row_captions, strict=True)):
        y = title_h + header_h + r * row_h
        for c, image in enumerate(row):
            x = PAD + c * cell
            if image is None:
                draw.rectangle([x, y, x + cell_size - 1, y + cell_size - 1], fill=MISSING)
                draw.text((x + PAD, y + PAD), "missing", fill=INK, font=font)
                continue
            scale = cell_size / max(image.size)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            # tiny renders (32 px) are enlarged without blurring; large ones shrink smoothly
            resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
            thumb = image.convert("RGB").resize(size, resample)
            grid.paste(thumb, (x + (cell_size - thumb.width) // 2, y + (cell_size - thumb.height) // 2))
        for k, line in enumerate(wrap_caption(caption, font, width - 2 * PAD, caption_lines)):
            draw.text((PAD, y + cell + k * line_h), line, fill=INK, font=font)
    return grid


def save_grid(grid: Image.Image, path: str | Path) -> Path:
    """Write the grid as PNG, atomically."""
    buffer = io.BytesIO()
    grid.save(buffer, format="PNG")
    write_bytes_atomic(path, buffer.getvalue())
    return Path(path)


def parse_labels(text: str, count: int) -> list[str]:
    """Comma-separated column labels (as typed in a node); missing ones become 'column N'."""
    labels = [part.strip() for part in (text or "").split(",") if part.strip()]
    if len(labels) > count:
        raise ValueError(
            f"{len(labels)} column label(s) ({', '.join(labels)}) for {count} column(s) of images; "
            "give at most one label per column"
        )
    return labels + [f"column {k + 1}" for k in range(len(labels), count)]


class ExpertColumns:
    """The experts loaded into a pipeline's UNet once, each as its own adapter; `use(label)` switches to one.

    A context manager: on exit the adapters are deleted, leaving the pipeline as it was."""

    def __init__(self, pipe: Any, experts: Mapping[str, str | Path | None]) -> None:
        from ..experts.lora_files import load_lora_expert
        from ..experts.lora_peft import apply_lora_expert
        from ..experts.ref import LORA_METHOD, ExpertRef

        if not experts:
            raise ValueError("no columns to compare: give at least one expert, e.g. {'base': None}")
        self.pipe = pipe
        self.adapters: dict[str, str | None] = {}
        for k, (label, path) in enumerate(experts.items()):
            if path is None or str(path).strip().lower() in BASE_LABELS:
                self.adapters[label] = None
                continue
            path = Path(path)
            if not path.is_file():
                raise FileNotFoundError(f"expert file for column {label!r} not found: {path}")
            method = ExpertRef.from_file(path).method
            if method != LORA_METHOD:
                # Hook: StyleInject experts join the grid once the core can load them onto a diffusers UNet.
                raise ValueError(f"{path} is a {method!r} expert; the comparison grid renders LoRA experts only")
            adapter = f"{_ADAPTER_PREFIX}{k}"
            with warnings.catch_warnings():
                # PEFT warns on every adapter after the first; several adapters are the point here.
                warnings.filterwarnings("ignore", message="Already found a `peft_config`")
                model = denoiser_of(pipe)
                config = None if model is not getattr(pipe, "unet", None) else model.config  # LDM names: UNets only
                apply_lora_expert(model, load_lora_expert(path, config), adapter_name=adapter)
            self.adapters[label] = adapter

    def use(self, label: str) -> None:
        """Make column `label` the active one: its adapter alone, or no adapter for the base model."""
        adapter = self.adapters[label]
        unet = denoiser_of(self.pipe)
        if not any(self.adapters.values()):
            return
        if adapter is None:
            unet.disable_adapters()
        else:
            unet.enable_adapters()
            unet.set_adapters([adapter])

    def close(self) -> None:
        names = [a for a in self.adapters.values() if a]
        if names:
            denoiser_of(self.pipe).delete_adapters(names)

    def __enter__(self) -> ExpertColumns:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def render_rows(
    pipe: Any,
    columns: ExpertColumns,
    prompts: Sequence[str],
    config: CompareConfig,
    on_progress: ProgressFn | None = None,
) -> list[list[Image.Image]]:
    """rows[r][c]: prompt r rendered by column c, every column from the seed `config.seed + r`."""
    import torch

    labels = list(columns.adapters)
    size = {"height": config.resolution, "width": config.resolution} if config.resolution else {}
    rows: list[list[Image.Image]] = [[] for _ in prompts]
    total, done = len(prompts) * len(labels), 0
    # Column-major: one adapter switch per column, not per image.
    for label in labels:
        columns.use(label)
        for r, prompt in enumerate(prompts):
            generator = torch.Generator("cpu").manual_seed(config.seed + r)
            out = pipe(
                prompt,
                negative_prompt=config.negative_prompt or None,
                num_inference_steps=config.steps,
                guidance_scale=config.guidance,
                generator=generator,
                **size,
            )
            rows[r].append(out.images[0])
            done += 1
            if on_progress:
                on_progress(done, total)
    return rows


def _pipeline(model_or_pipeline: Any, device: str) -> Any:
    if isinstance(model_or_pipeline, str | Path):
        from ..models.pipelines import load_pipeline

        return load_pipeline(model_or_pipeline, device=device)
    return model_or_pipeline


def _check_prompts(prompts: Sequence[str], what: str = "comparison") -> list[str]:
    if isinstance(prompts, str):
        raise ValueError(f"{what} prompts must be a list of strings, not one string; pass e.g. ['two red cubes']")
    texts = list(prompts)
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise ValueError(f"{what} prompts must be a non-empty list of non-empty strings, got {texts!r}")
    return texts


def compare_experts(
    model_or_pipeline: Any,
    experts: Mapping[str, str | Path | None],
    prompts: Sequence[str],
    *,
    steps: int = 20,
    guidance: float = 7.5,
    seed: int = 0,
    resolution: int | None = None,
    device: str = "auto",
    title: str = "",
    on_progress: ProgressFn | None = None,
) -> Image.Image:
    """The captioned grid of `prompts` (rows) x `experts` (columns, in order; label -> expert file, or None /
    'none' for the base model), rendered with a diffusers pipeline (or a model path/id loaded on `device`)."""
    grids = compare_skills(
        model_or_pipeline,
        experts,
        {title: prompts},
        CompareConfig(steps=steps, guidance=guidance, seed=seed, resolution=resolution),
        device=device,
        on_progress=on_progress,
    )
    return grids[title]


def compare_skills(
    model_or_pipeline: Any,
    experts: Mapping[str, str | Path | None],
    prompts_by_skill: Mapping[str, Sequence[str]],
    config: CompareConfig,
    *,
    device: str = "auto",
    on_progress: ProgressFn | None = None,
) -> dict[str, Image.Image]:
    """One grid per skill (title = the skill), the experts loaded once for all of them."""
    checked = {skill: _check_prompts(p, f"skill {skill!r}") for skill, p in prompts_by_skill.items()}
    pipe = _pipeline(model_or_pipeline, device)
    total = sum(len(p) for p in checked.values()) * len(experts)
    grids, offset = {}, 0
    with ExpertColumns(pipe, experts) as columns:
        for skill, texts in checked.items():
            n = len(texts) * len(experts)

            def progress(done: int, _total: int, offset: int = offset) -> None:
                if on_progress:
                    on_progress(offset + done, total)

            rows = render_rows(pipe, columns, texts, config, progress)
            offset += n
            title = f"{skill}: held-out prompts, seed {config.seed}+row" if skill else ""
            grids[skill] = draw_comparison_grid(rows, list(experts), texts, title=title)
            log.info("comparison grid for %r: %d prompt(s) x %d column(s)", skill, len(texts), len(experts))
    return grids
