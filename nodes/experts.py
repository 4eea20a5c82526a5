"""Nodes that put an expert onto a MODEL: load a file (LoRA or StyleInject) or apply one from a socket.

SelmaLoadExpert and LoraLoader pick a file from a list that ComfyUI checks before the graph runs, so they cannot
load a file that the same run is about to write (the merged expert on a first run): SelmaApplyExpert takes the
SELMA_EXPERT socket (trained or merged in the same graph) instead.
"""

from __future__ import annotations

from ..selma.experts.ref import LORA_METHOD, STYLE_INJECT_METHOD, ExpertRef
from .glue.apply_expert import apply_expert_to_model
from .glue.comfy_env import expert_file_names, expert_file_path, file_fingerprint

CATEGORY = "SELMA/experts"


def expert_fingerprint(expert_name: str, method: str) -> str:
    """IS_CHANGED of the file loaders: a retrained expert under the same name is loaded again, not reused."""
    try:
        return file_fingerprint(expert_file_path(expert_name, method))
    except (FileNotFoundError, ValueError):
        return "missing"  # the loader itself raises with the fix


MODEL_INPUT = ("MODEL", {"tooltip": "the base model; it is cloned, never changed"})
STRENGTH_INPUT = (
    "FLOAT",
    {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01, "tooltip": "scale of the expert's update"},
)


class SelmaApplyExpert:
    DESCRIPTION = "Applies a SELMA expert from a socket (e.g. SELMA Merge Experts' output) to a MODEL, as a clone."
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("the MODEL with the expert applied",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": MODEL_INPUT,
                "expert": ("SELMA_EXPERT", {"tooltip": "from Train, Load or Merge Experts"}),
                "strength": STRENGTH_INPUT,
            },
        }

    def apply(self, model, expert, strength):
        if strength == 0:  # nothing to patch: skip loading the file (and ComfyUI's LoRA code)
            return (model,)
        return (apply_expert_to_model(model, expert.path, strength, expert.method),)


class SelmaLoadExpert:
    DESCRIPTION = (
        "Applies a SELMA LoRA expert or any SD LoRA file from models/loras to a MODEL, as a patched clone "
        "(StyleInject experts: SELMA Load StyleInject)."
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL", "SELMA_EXPERT")
    RETURN_NAMES = ("model", "expert")
    OUTPUT_TOOLTIPS = ("the MODEL with the expert applied", "the expert, for SELMA Merge Experts")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": MODEL_INPUT,
                "expert_name": (expert_file_names(LORA_METHOD), {"tooltip": "a LoRA file in models/loras"}),
                "strength": STRENGTH_INPUT,
            },
        }

    @classmethod
    def IS_CHANGED(cls, expert_name, **_):
        return expert_fingerprint(expert_name, LORA_METHOD)

    def load(self, model, expert_name, strength):
        ref = ExpertRef.from_file(expert_file_path(expert_name, LORA_METHOD))
        return (apply_expert_to_model(model, ref.path, strength, ref.method), ref)


class SelmaLoadStyleInject:
    DESCRIPTION = (
        "Applies a StyleInject expert (trained with method 'styleinject') from models/styleinject to a MODEL: a "
        "patched clone, the input MODEL is untouched. Strength scales the update and the AdaIN re-scaling (0 = off)."
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("the MODEL with the StyleInject expert applied",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": MODEL_INPUT,
                "expert_name": (
                    expert_file_names(STYLE_INJECT_METHOD),
                    {"tooltip": "a StyleInject expert in models/styleinject"},
                ),
                "strength": STRENGTH_INPUT,
            },
        }

    @classmethod
    def IS_CHANGED(cls, expert_name, **_):
        return expert_fingerprint(expert_name, STYLE_INJECT_METHOD)

    def load(self, model, expert_name, strength):
        from ..selma.experts.style_inject_files import load_style_inject_expert
        from .glue.style_inject_patch import patch_model_with_style_inject

        expert = load_style_inject_expert(expert_file_path(expert_name, STYLE_INJECT_METHOD))
        return (patch_model_with_style_inject(model, expert, strength),)


NODE_CLASS_MAPPINGS = {
    "SelmaLoadExpert": SelmaLoadExpert,
    "SelmaApplyExpert": SelmaApplyExpert,
    "SelmaLoadStyleInject": SelmaLoadStyleInject,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "SelmaLoadExpert": "SELMA Load Expert",
    "SelmaApplyExpert": "SELMA Apply Expert",
    "SelmaLoadStyleInject": "SELMA Load StyleInject",
}
