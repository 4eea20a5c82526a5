"""SELMA's second stage: render each prompt of a skill into `datasets/<skill>/`, one image per prompt.

Every image has its own seed (a hash of the run seed, the skill and the prompt's index) drawn by its own
CPU `torch.Generator`, so an image's starting noise does not depend on the batch it was rendered in, the
device, or which process rendered it. The seed, the settings and the indices rendered in the same batch
are recorded per image: `rerender` replays that batch and gets the same pixels bit for bit (on the same
device and software). Batched and one-at-a-time renders agree to within one 8-bit level: matmul kernels
round differently for different batch sizes, on CPU and GPU alike.

Resumable: images are written atomically before their metadata line, and a rerun renders only the indices
that have no record. Under `accelerate launch` each process renders the indices `i % num_processes ==
process_index` into the same folder (the writer locks the metadata file).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic_files import read_jsonl
from ..models.pipelines import (
    check_device_name,
    check_dtype_name,
    load_pipeline,
    pipeline_label,
    resolve_device,
    resolve_dtype,
)
from ..prompts.generation import load_prompts, prompts_path
from ..stage_lock import stage_lock
from .files import IMAGE_FORMATS, METADATA, DatasetRecord, DatasetWriter, dataset_dir, read_dataset

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
_SKILL_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")


def _positive_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)


@dataclass(frozen=True)
class DatasetConfig:
    batch_size: int = field(default=4, metadata={"help": "prompts rendered per pipeline call"})
    steps: int | None = field(default=None, metadata={"help": "denoising steps; None = the pipeline's default"})
    guidance: float | None = field(default=None, metadata={"help": "CFG scale; None = the pipeline's default"})
    width: int | None = field(default=None, metadata={"help": "pixels, a multiple of 8; None = the model's size"})
    height: int | None = field(default=None, metadata={"help": "pixels, a multiple of 8; None = the model's size"})
    seed: int = field(default=0, metadata={"help": "run seed; each image's seed is derived from it and its index"})
    negative_prompt: str = field(default="", metadata={"help": "the same negative prompt for every image"})
    image_format: str = field(default="png", metadata={"help": f"one of {sorted(IMAGE_FORMATS)}"})
    device: str = field(default="auto", metadata={"help": "auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps"})
    dtype: str = field(default="auto", metadata={"help": "auto (float16 on GPU, float32 on CPU), float32, ..."})
    config_folder: str | None = field(
        default=None, metadata={"help": "single-file checkpoints: a local diffusers folder with the configs"}
    )

    def __post_init__(self) -> None:
        if not (isinstance(self.batch_size, int) and 1 <= self.batch_size <= 1024):
            raise ValueError(f"DatasetConfig.batch_size={self.batch_size!r} must be an integer in 1..1024")
        if not _positive_or_none(self.steps):
            raise ValueError(f"DatasetConfig.steps={self.steps!r} must be an integer >= 1, or None for the default")
        if self.guidance is not None and not (isinstance(self.guidance, int | float) and 0 <= self.guidance < 100):
            raise ValueError(f"DatasetConfig.guidance={self.guidance!r} must be in [0, 100), or None for the default")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not _positive_or_none(value) or (value is not None and value % 8):
                raise ValueError(
                    f"DatasetConfig.{name}={value!r} must be a positive multiple of 8 (pixels), or None for the "
                    "model's native size"
                )
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**63):
            raise ValueError(f"DatasetConfig.seed={self.seed!r} must be an integer in 0..2**63-1")
        if not isinstance(self.negative_prompt, str):
            raise ValueError(f"DatasetConfig.negative_prompt={self.negative_prompt!r} must be a string ('' = none)")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(
                f"DatasetConfig.image_format={self.image_format!r} is not supported; "
                f"use one of {sorted(IMAGE_FORMATS)}"
            )
        check_device_name(self.device)
        check_dtype_name(self.dtype)


@dataclass
class DatasetResult:
    """A dataset folder and what a run did to it (the SELMA_DATASET object of the nodes)."""

    folder: Path
    skill: str
    count: int
    prompts: int = 0
    rendered: int = 0
    skipped: int = 0

    @property
    def complete(self) -> bool:
        return self.count >= self.prompts

    def summary(self) -> str:
        return (
            f"{self.count}/{self.prompts} images in {self.folder} "
            f"(+{self.rendered} rendered, {self.skipped} already there)"
        )


def image_seed(seed: int, skill_name: str, index: int) -> int:
    """The seed of one image: stable across reruns, batch sizes and processes; distinct per skill, so two
    skills' datasets do not share their starting noise image for image."""
    digest = hashlib.sha256(f"{seed}:{skill_name}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def check_skill_name(skill_name: str) -> str:
    if not isinstance(skill_name, str) or not _SKILL_RE.match(skill_name):
        raise ValueError(
            f"skill={skill_name!r} is not a valid skill name; use 1-64 lower-case letters, digits, '_' or '-' "
            "(it names the dataset folder)"
        )
    return skill_name


def resolve_prompts(run_dir: str | Path, skill_name: str, prompts: Sequence[str] | None) -> list[str]:
    """The prompt list to render: the given one, else `prompts/<skill>.jsonl`. Raises on an empty list."""
    if prompts is None:
        texts = load_prompts(run_dir, skill_name)
        where = f"{prompts_path(run_dir, skill_name)} is missing or empty"
        fix = "run `selma prompts` (or the Generate Prompts node) first, or pass the prompts"
    else:
        if isinstance(prompts, str):
            raise ValueError("prompts must be a list of strings, not one string; pass e.g. ['a red cube']")
        texts = list(prompts)
        where, fix = "the prompt list is empty", "pass at least one prompt"
    if not texts:
        raise ValueError(f"no prompts to render for skill {skill_name!r}: {where}; {fix}")
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"prompt {i} of skill {skill_name!r} is {text!r}; every prompt must be non-empty text")
    return texts


def pending_indices(
    run_dir: str | Path,
    skill_name: str,
    prompts: Sequence[str] | None = None,
    *,
    process_index: int = 0,
    num_processes: int = 1,
) -> list[int]:
    """The prompt indices of this process's share that have no image yet (what `build_dataset` renders)."""
    texts = resolve_prompts(run_dir, check_skill_name(skill_name), prompts)
    _check_share(process_index, num_processes)
    done = _existing_records(dataset_dir(run_dir, skill_name), texts)
    return [i for i in range(process_index, len(texts), num_processes) if i not in done]


def build_dataset(
    skill_name: str,
    model: Any,
    run_dir: str | Path,
    prompts: Sequence[str] | None = None,
    config: DatasetConfig = DatasetConfig(),
    on_progress: ProgressFn | None = None,
    *,
    process_index: int = 0,
    num_processes: int = 1,
    model_name: str | None = None,
) -> DatasetResult:
    """Render the prompts of `skill_name` into `run_dir/datasets/<skill>/` (resuming a previous run).

    `model`: a diffusers folder, a .safetensors/.ckpt file, a hub id, or an already-loaded pipeline (used
    as it is unless `config.device`/`config.dtype` are set). `model_name` is what metadata records as
    `model` (default: the source string, or the pipeline's own path). `on_progress(done, total)` counts this
    process's share after every batch; if it raises (Cancel), the images written so far stay.
    """
    check_skill_name(skill_name)
    texts = resolve_prompts(run_dir, skill_name, prompts)
    _check_share(process_index, num_processes)
    writer = DatasetWriter(dataset_dir(run_dir, skill_name), config.image_format)  # raises if not writable
    if num_processes > 1:  # shards of one launch write together; its main process holds the stage (selma images)
        return _build(writer, skill_name, model, texts, config, on_progress, process_index, num_processes, model_name)
    with stage_lock(writer.folder, "images", f"rendering the dataset of {skill_name!r} into {writer.folder}"):
        try:
            return _build(writer, skill_name, model, texts, config, on_progress, 0, 1, model_name)
        finally:
            writer.remove_lock_file()


def _build(writer, skill_name, model, texts, config, on_progress, process_index, num_processes, model_name):
    done = _existing_records(writer.folder, texts)
    share = list(range(process_index, len(texts), num_processes))
    todo = [i for i in share if i not in done]
    result = DatasetResult(writer.folder, skill_name, len(done), len(texts), skipped=len(share) - len(todo))
    if on_progress is not None:
        on_progress(len(share) - len(todo), len(share))
    resolve_device(config.device)  # a device that is not there is an error, whatever is left to do
    if not todo:
        return result

    pipe, label = _pipeline(model, config, model_name)
    settings = _render_settings(pipe, config)
    log.info("rendering %d of %d images for skill %r with %s", len(todo), len(texts), skill_name, label)
    for start in range(0, len(todo), config.batch_size):
        batch = todo[start : start + config.batch_size]
        seeds = [image_seed(config.seed, skill_name, i) for i in batch]
        images, flagged = _render(pipe, [texts[i] for i in batch], seeds, settings)
        for i, seed, image, nsfw in zip(batch, seeds, images, flagged, strict=True):
            extra = {"model": label, **settings, "width": image.width, "height": image.height, "batch": batch}
            if nsfw:  # the pipeline's safety checker blacked this image out; let trainers skip it
                extra["nsfw_flagged"] = True
            writer.add(image, texts[i], i, seed, **extra)
        result.rendered += len(batch)
        result.count += len(batch)
        if on_progress is not None:
            on_progress(result.skipped + result.rendered, len(share))
    return result


def rerender(folder: str | Path, index: int, model: Any, *, device: str = "auto", dtype: str = "auto") -> Image.Image:
    """Render the image of record `index` again from its metadata, replaying the batch it was rendered in.

    With the same pipeline on the same device the result equals the stored image pixel for pixel.
    """
    records = {r.index: r for r in read_dataset(folder, check_files=False)}
    if index not in records:
        raise ValueError(
            f"dataset {folder} has no record with index {index}; its {len(records)} records have indices "
            f"{min(records)}..{max(records)}"
        )
    record = records[index]
    if "steps" not in record.extra or record.seed is None:
        raise ValueError(
            f"record {index} of {folder} has no seed or render settings (written by the ComfyUI writer node?); "
            "only images rendered by build_dataset / `selma images` can be re-rendered"
        )
    batch = record.extra.get("batch", [index])
    missing = [i for i in batch if i not in records]
    if missing:
        raise ValueError(
            f"record {index} was rendered in a batch with indices {missing} that have no record (a run was killed "
            "mid-batch); re-rendering it exactly needs them, so rerun the renderer first"
        )
    peers = [records[i] for i in batch]
    config = DatasetConfig(device=device, dtype=dtype)
    pipe, _ = _pipeline(model, config, None)
    settings = {
        "steps": record.extra["steps"],
        "guidance": record.extra["guidance"],
        "negative_prompt": record.extra.get("negative_prompt", ""),
        "width": record.extra.get("width"),
        "height": record.extra.get("height"),
    }
    images, _ = _render(pipe, [p.text for p in peers], [p.seed for p in peers], settings)
    return images[batch.index(index)]


def _check_share(process_index: int, num_processes: int) -> None:
    if not (isinstance(num_processes, int) and num_processes >= 1):
        raise ValueError(f"num_processes={num_processes!r} must be an integer >= 1")
    if not (isinstance(process_index, int) and 0 <= process_index < num_processes):
        raise ValueError(f"process_index={process_index!r} must be in 0..{num_processes - 1}")


def _existing_records(folder: Path, texts: list[str]) -> dict[int, DatasetRecord]:
    """Records on disk whose image exists, by index, checked against the prompts: a dataset rendered from
    other prompts is an error (mixing them would pair images with the wrong text), not something to overwrite."""
    meta = folder / METADATA
    done: dict[int, DatasetRecord] = {}
    for number, data in enumerate(read_jsonl(meta), 1):
        record = DatasetRecord.from_json(data, f"{meta}:{number}")
        if (folder / record.file_name).is_file():
            done[record.index] = record
    for index, record in done.items():
        if index >= len(texts) or record.text != texts[index]:
            expected = repr(texts[index]) if index < len(texts) else f"no prompt (there are {len(texts)})"
            raise ValueError(
                f"dataset {folder} was rendered from other prompts: image {index} shows {record.text!r} but prompt "
                f"{index} is {expected}; render into a new run directory, or delete {folder} to start over"
            )
    return done


def _pipeline(model: Any, config: DatasetConfig, model_name: str | None) -> tuple[Any, str]:
    if isinstance(model, str | Path):
        pipe = load_pipeline(model, device=config.device, dtype=config.dtype, config_folder=config.config_folder)
        return pipe, model_name or str(model)
    if not callable(model) or not hasattr(model, "components"):
        raise ValueError(
            f"model={type(model).__name__} is not a diffusers pipeline; pass a pipeline object, a diffusers folder, "
            "a .safetensors/.ckpt file or a hub id"
        )
    # An explicit device/dtype moves the given pipeline; "auto" leaves it where the caller put it. Only real
    # changes call .to(): diffusers warns on every dtype cast.
    if config.device != "auto" and _device_name(resolve_device(config.device)) != _device_name(model.device):
        model = model.to(resolve_device(config.device))
    if config.dtype != "auto":
        dtype = resolve_dtype(config.dtype, _device_name(model.device))
        model = model.to(dtype=dtype) if dtype != model.dtype else model
    model.set_progress_bar_config(disable=True)
    return model, model_name or pipeline_label(model)


def _device_name(device: Any) -> str:
    """'cpu' for torch.device('cpu'), 'cuda:0' for cuda:0 (so 'cuda' and 'cuda:0' compare as they should)."""
    name = str(device)
    return "cuda:0" if name == "cuda" else name


def _render_settings(pipe: Any, config: DatasetConfig) -> dict:
    """The settings recorded per image; None in the config means the pipeline's own default (SELMA's choice)."""
    defaults = inspect.signature(pipe.__call__).parameters

    def default(name: str, fallback: Any) -> Any:
        value = defaults[name].default if name in defaults else fallback
        return fallback if value is inspect.Parameter.empty or value is None else value

    guidance = config.guidance if config.guidance is not None else default("guidance_scale", 7.5)
    return {
        "steps": config.steps or default("num_inference_steps", 50),
        "guidance": float(guidance),
        "negative_prompt": config.negative_prompt,
        "width": config.width,
        "height": config.height,
    }


def _render(pipe: Any, texts: list[str], seeds: list[int], settings: dict) -> tuple[list, list[bool]]:
    import torch

    # CPU generators: the noise of an image is the same on every device and in any batch.
    generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    kwargs: dict = {
        "prompt": texts,
        "num_inference_steps": settings["steps"],
        "guidance_scale": settings["guidance"],
        "generator": generators,
        "output_type": "pil",
    }
    if settings["negative_prompt"]:  # not every pipeline takes one; pass it only when asked for
        kwargs["negative_prompt"] = [settings["negative_prompt"]] * len(texts)
    for name in ("width", "height"):
        if settings.get(name):
            kwargs[name] = settings[name]
    with torch.inference_mode():
        output = pipe(**kwargs)
    flagged = getattr(output, "nsfw_content_detected", None) or [False] * len(texts)
    if len(output.images) != len(texts):
        raise RuntimeError(f"the pipeline returned {len(output.images)} images for {len(texts)} prompts")
    return list(output.images), [bool(f) for f in flagged]
