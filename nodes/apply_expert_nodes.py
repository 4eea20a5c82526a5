"""Apply an expert that arrives through a SELMA_EXPERT socket (trained or merged in the same graph) to a MODEL.

SelmaLoadExpert and LoraLoader pick a file from a list that ComfyUI checks before the graph runs, so they cannot
load a file that the same run is about to write (the merged expert on a first run). This node takes the socket.
"""

from __future__ import annotations

from .training_nodes import apply_expert_to_model

CATEGORY = "SELMA/experts"


class SelmaApplyExpert:
    DESCRIPTION = "Applies a SELMA expert from a socket (e.g. SELMA Merge Experts' output) to a MODEL, as a clone."
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MODEL",),
                "expert": ("SELMA_EXPERT", {"tooltip": "from Train, Load or Merge Experts"}),
                "strength": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01}),
            },
        }

    def apply(self, model, expert, strength):
        if strength == 0:  # nothing to patch: skip loading the file (and ComfyUI's LoRA code)
            return (model,)
        return (apply_expert_to_model(model, expert.path, strength, expert.method),)


NODE_CLASS_MAPPINGS = {"SelmaApplyExpert": SelmaApplyExpert}
NODE_DISPLAY_NAME_MAPPINGS = {"SelmaApplyExpert": "SELMA Apply Expert"}
