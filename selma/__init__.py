"""comfyui-selma's headless core: SELMA skill experts and StyleInject adapters for diffusion models.

Importing `selma` is cheap: names are resolved lazily, so torch/diffusers load only for stages that
need them.
"""

from __future__ import annotations

from .lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "filter_diverse": ".prompts.diversity",
    "rouge_l_f": ".prompts.diversity",
    "DiversityFilter": ".prompts.diversity",
    "Skill": ".prompts.skills",
    "builtin_skill": ".prompts.skills",
    "builtin_skill_names": ".prompts.skills",
    "load_skills_file": ".prompts.skills",
    "LLMConfig": ".llm",
    "make_backend": ".llm",
    "PromptGenConfig": ".prompts.generation",
    "generate_prompts": ".prompts.generation",
    "load_prompts": ".prompts.generation",
    "DatasetConfig": ".datasets.rendering",
    "build_dataset": ".datasets.rendering",
    "load_pipeline": ".models.pipelines",
    "dataset_contact_sheet": ".datasets.contact_sheet",
    "read_dataset": ".datasets.files",
    "TrainConfig": ".training",
    "train_expert": ".training",
    "load_diffusers_backend": ".training",
    "LoraExpert": ".experts.lora_expert",
    "save_lora_expert": ".experts.lora_files",
    "load_lora_expert": ".experts.lora_files",
    "apply_lora_expert": ".experts.lora_peft",
    "MergeConfig": ".merging",
    "merge_lora_experts": ".merging",
    "merge_expert_files": ".merging",
    "load_style_inject_expert": ".experts.style_inject_files",
    "save_style_inject_expert": ".experts.style_inject_save",
    "apply_style_inject_expert": ".experts.style_inject_files",
    "inspect_router": ".inspection.router_report",
    "RouterReport": ".inspection.router_report",
    "CompareConfig": ".evaluation.comparison",
    "compare_skills": ".evaluation.comparison",
    "EvalConfig": ".evaluation.scoring",
    "score_images": ".evaluation.scoring",
    "AnswererConfig": ".evaluation.answerer",
    "RunConfig": ".pipeline.run_config",
    "load_run_config": ".pipeline.run_config",
    "run_pipeline": ".pipeline.runner",
}

__getattr__, _names = lazy_exports(__name__, _LAZY)
__all__ = ["__version__", *_names]
