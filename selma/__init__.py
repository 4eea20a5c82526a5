"""comfyui-selma's headless core: SELMA skill experts and StyleInject adapters for diffusion models.

Importing `selma` is cheap: names are resolved lazily, so torch/diffusers load only for stages that
need them.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "filter_diverse": ".diversity",
    "rouge_l_f": ".diversity",
    "DiversityFilter": ".diversity",
    "Skill": ".skills",
    "builtin_skill": ".skills",
    "builtin_skill_names": ".skills",
    "load_skills_file": ".skills",
    "LLMConfig": ".llm",
    "make_backend": ".llm",
    "PromptGenConfig": ".prompt_generation",
    "generate_prompts": ".prompt_generation",
    "load_prompts": ".prompt_generation",
    "DatasetConfig": ".dataset_building",
    "build_dataset": ".dataset_building",
    "load_pipeline": ".pipelines",
    "dataset_contact_sheet": ".contact_sheet",
    "read_dataset": ".dataset_files",
    "TrainConfig": ".training",
    "train_expert": ".training",
    "load_diffusers_backend": ".training",
    "LoraExpert": ".lora_expert",
    "save_lora_expert": ".expert_files",
    "load_lora_expert": ".expert_files",
    "apply_lora_expert": ".expert_files",
    "MergeConfig": ".merging",
    "merge_lora_experts": ".merging",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
