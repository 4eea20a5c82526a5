"""Nodes for SELMA's second stage: write ComfyUI-rendered images into a dataset, and load one back.

ComfyUI renders (prompt list -> CLIPTextEncode -> KSampler -> VAEDecode runs once per prompt), so the
writer receives a *list* of IMAGE batches and the prompt list (INPUT_IS_LIST). Pairing rules:
N prompts with N batches -> every image of batch i gets prompt i; one batch of N images with N prompts ->
by position. Anything else is an error that names the counts; nothing is written until the inputs check out.
"""

from __future__ import annotations

from pathlib import Path

from ..selma.datasets.contact_sheet import dataset_contact_sheet
from ..selma.datasets.files import IMAGE_FORMATS, DatasetWriter, dataset_dir, read_dataset
from ..selma.datasets.rendering import DatasetResult, check_skill_name
from .glue.comfy_env import check_run_name, file_fingerprint, output_directory, progress_reporter, run_directory
from .glue.images import pil_to_tensor, tensors_to_pil
from .glue.sampler_settings import sampler_settings

CATEGORY = "SELMA/datasets"


def pair_prompts(batch_sizes: list[int], prompts: list[str]) -> list[str]:
    """The prompt of every image, in order, for image batches of `batch_sizes` and the prompt list."""
    images = sum(batch_sizes)
    if not prompts or not batch_sizes:
        raise ValueError(
            f"got {len(prompts)} prompt(s) and {len(batch_sizes)} image batch(es); connect the prompt list that "
            "drove the sampler to 'prompts' and the VAE Decode output to 'images'"
        )
    if len(batch_sizes) == len(prompts):
        return [text for text, size in zip(prompts, batch_sizes, strict=True) for _ in range(size)]
    if len(batch_sizes) == 1 and images == len(prompts):
        return list(prompts)
    raise ValueError(
        f"cannot pair {len(prompts)} prompt(s) with {len(batch_sizes)} image batch(es) holding {images} image(s) "
        f"(batch sizes {batch_sizes[:8]}{'...' if len(batch_sizes) > 8 else ''}). Connect the same prompt list that "
        "fed CLIP Text Encode (one batch per prompt), or one batch with one image per prompt; nothing written"
    )


def assign_indices(existing: dict, captions: list[str]) -> list[int]:
    """Where each image goes: a prompt rendered before takes its old slots again (the new image replaces the old
    one, so re-running a graph never duplicates a prompt); anything beyond them gets a new index."""
    slots: dict[str, list[int]] = {}
    for index in sorted(existing):
        slots.setdefault(existing[index].text, []).append(index)
    next_index = 1 + max(existing, default=-1)
    indices = []
    for text in captions:
        if slots.get(text):
            indices.append(slots[text].pop(0))
        else:
            indices.append(next_index)
            next_index += 1
    return indices


class SelmaDatasetWriter:
    DESCRIPTION = (
        "Appends images with their prompts to output/selma/<run_name>/datasets/<skill>/ (images + metadata.jsonl, "
        "the Hugging Face imagefolder layout). Wire the prompt list into both CLIP Text Encode and 'prompts'."
    )
    CATEGORY = CATEGORY
    INPUT_IS_LIST = True
    OUTPUT_NODE = True
    RETURN_TYPES = ("SELMA_DATASET",)
    RETURN_NAMES = ("dataset",)
    OUTPUT_TOOLTIPS = ("the dataset folder, for SELMA Train Expert or SELMA Filter Dataset",)
    FUNCTION = "write"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "VAE Decode output: one batch per prompt, or one image per prompt"}),
                "prompts": ("STRING", {"forceInput": True, "tooltip": "the prompt list that drove the sampler"}),
                "skill": ("STRING", {"default": "my_skill", "tooltip": "dataset name; prompt_set overrides it"}),
                "run_name": ("STRING", {"default": "selma", "tooltip": "folder under output/selma/"}),
            },
            "optional": {
                "prompt_set": ("SELMA_PROMPTS", {"tooltip": "if connected: its skill and run folder are used"}),
                "image_format": (
                    sorted(IMAGE_FORMATS),
                    {"default": "png", "tooltip": "png is lossless; jpg/webp are smaller"},
                ),
            },
            "hidden": {"prompt": "PROMPT", "unique_id": "UNIQUE_ID"},
        }

    def write(self, images, prompts, skill, run_name, prompt_set=None, image_format=("png",), prompt=None,
              unique_id=None):  # fmt: skip
        if prompt_set and prompt_set[0] is not None:
            skill_name, run_dir = prompt_set[0].skill, prompt_set[0].run_dir
        else:
            skill_name, run_dir = skill[0].strip(), run_directory(run_name[0].strip())
        check_skill_name(skill_name)
        texts = [str(p).strip() for p in prompts]
        if not all(texts):
            raise ValueError(f"prompt {texts.index('')} is empty; every image needs its prompt text")
        batches = tensors_to_pil(images)
        captions = pair_prompts([len(b) for b in batches], texts)
        pil_images = [image for batch in batches for image in batch]
        writer = DatasetWriter(dataset_dir(run_dir, skill_name), image_format[0])  # raises if not writable
        indices, report = assign_indices(writer.existing(), captions), progress_reporter(len(pil_images))
        settings, note = sampler_settings(prompt[0] if prompt else None, unique_id[0] if unique_id else None)
        seed = settings.pop("seed", None)
        if note:
            settings["settings_note"] = note
        batch_index = [k for batch in batches for k in range(len(batch))]  # the noise of image k of a batch
        for k, (image, text, index) in enumerate(zip(pil_images, captions, indices, strict=True)):
            size = {"width": image.width, "height": image.height}
            writer.add(image, text, index, seed, source="comfyui", batch_index=batch_index[k], **size, **settings)
            report(k + 1, len(pil_images))
        writer.remove_lock_file()  # ComfyUI runs one graph at a time: nobody else appends here now
        count = len(read_dataset(writer.folder))
        return (DatasetResult(writer.folder, skill_name, count, prompts=count, rendered=len(pil_images)),)


def _dataset_folder(dataset_path: str, run_name: str, skill: str) -> Path:
    if dataset_path.strip():
        folder = Path(dataset_path.strip()).expanduser()
        return folder if folder.is_absolute() else output_directory() / folder
    if skill.strip():
        return dataset_dir(run_directory(run_name.strip()), check_skill_name(skill.strip()))
    raise ValueError("give dataset_path, or run_name and skill, to say which dataset to load")


class SelmaLoadDataset:
    DESCRIPTION = "Loads a dataset folder (images + metadata.jsonl) and draws a contact sheet of it."
    CATEGORY = CATEGORY
    RETURN_TYPES = ("SELMA_DATASET", "IMAGE")
    RETURN_NAMES = ("dataset", "contact_sheet")
    OUTPUT_TOOLTIPS = ("the dataset", "a contact sheet of its images")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "dataset_path": (
                    "STRING",
                    {"default": "", "tooltip": "dataset folder (relative = under output/); empty = run_name + skill"},
                ),
                "run_name": ("STRING", {"default": "selma", "tooltip": "folder under output/selma/"}),
                "skill": ("STRING", {"default": "", "tooltip": "dataset name under <run>/datasets/"}),
                "max_images": ("INT", {"default": 16, "min": 1, "max": 256, "tooltip": "thumbnails on the sheet"}),
            },
        }

    VALIDATE_INPUTS = staticmethod(check_run_name)

    @classmethod
    def IS_CHANGED(cls, dataset_path, run_name, skill, **_):
        """Images appended to the dataset (metadata.jsonl rewritten) make ComfyUI load it again."""
        try:
            return file_fingerprint(_dataset_folder(dataset_path, run_name, skill) / "metadata.jsonl")
        except ValueError:
            return "invalid"  # load raises with the fix

    def load(self, dataset_path, run_name, skill, max_images):
        folder = _dataset_folder(dataset_path, run_name, skill)
        count = len(read_dataset(folder))  # raises with the fix if the folder is not a dataset
        sheet = dataset_contact_sheet(folder, max_images=max_images)
        return (DatasetResult(folder, folder.name, count, prompts=count), pil_to_tensor([sheet]))


class SelmaFilterDataset:
    DESCRIPTION = (
        "Keeps the images of a dataset whose DSG score (the share of its prompt's questions the evaluator's answerer "
        "says yes to) is at least the threshold: filtered self-generated data, in the spirit of DreamSync. The kept "
        "images go to <run>/filtered/<skill>/ (a dataset like any other, for SELMA Train Expert), every score to "
        "its scores.jsonl. Questions: the prompts' recorded scenes (template prompts, shapes prompts), else the "
        "evaluator's LLM."
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = ("SELMA_DATASET", "IMAGE")
    RETURN_NAMES = ("dataset", "contact_sheet")
    OUTPUT_TOOLTIPS = ("the images that pass, as a dataset in <run>/filtered/<skill>/", "a contact sheet of them")
    FUNCTION = "filter"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "dataset": ("SELMA_DATASET", {"tooltip": "from SELMA Dataset Writer or SELMA Load Dataset"}),
                "evaluator": ("SELMA_EVALUATOR", {"tooltip": "its answerer scores (the shapes checker, a VLM...)"}),
                "threshold": (
                    "FLOAT",
                    {"default": 0.75, "min": 0.01, "max": 1.0, "step": 0.01, "tooltip": "1.0 = every question yes"},
                ),
            },
        }

    def filter(self, dataset, evaluator, threshold):
        from .glue.filter_dataset import filter_node_dataset

        result = filter_node_dataset(dataset, evaluator, threshold, progress_reporter(dataset.count))
        kept = DatasetResult(result.folder, dataset.skill, result.kept, prompts=result.kept)
        sheet = dataset_contact_sheet(result.folder, max_images=16) if result.kept else None
        image = pil_to_tensor([sheet]) if sheet is not None else _blank()
        return {"ui": {"text": [result.summary()]}, "result": (kept, image)}


def _blank():
    import torch

    return torch.ones(1, 64, 64, 3)


NODE_CLASS_MAPPINGS = {
    "SelmaDatasetWriter": SelmaDatasetWriter,
    "SelmaLoadDataset": SelmaLoadDataset,
    "SelmaFilterDataset": SelmaFilterDataset,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "SelmaDatasetWriter": "SELMA Dataset Writer",
    "SelmaLoadDataset": "SELMA Load Dataset",
    "SelmaFilterDataset": "SELMA Filter Dataset (DSG)",
}
