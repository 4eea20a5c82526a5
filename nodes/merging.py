"""SELMA's fourth stage in ComfyUI: merge skill experts into one multi-skill expert saved in models/loras.

ComfyUI's classic API has no variadic inputs, so the node offers eight SELMA_EXPERT sockets (the first
required) plus `expert_files`, names of files in models/loras for experts that are not in the graph.
"""

from __future__ import annotations

from pathlib import Path

from ..selma.experts.ref import LORA_METHOD, ExpertRef
from ..selma.merging.config import METHODS, MergeConfig, parse_weights
from .glue.comfy_env import expert_file_path, loras_directory, progress_reporter

CATEGORY = "SELMA/experts"
SOCKETS = 8


def save_path(save_name: str) -> Path:
    """Where `save_name` ('selma/merged.safetensors') goes under models/loras; refuses names that leave it."""
    name = Path(save_name.strip())
    if not save_name.strip() or name.is_absolute() or ".." in name.parts:
        raise ValueError(
            f"save_name={save_name!r} must be a file name under models/loras, like selma/merged.safetensors"
        )
    return loras_directory() / name


class SelmaMergeExperts:
    DESCRIPTION = (
        "Merges skill experts into one multi-skill expert, saved in models/loras/<save_name> with its recipe, and "
        "a per-module report (rank, energy kept, relative error). 'linear' is SELMA's exact weighted average."
    )
    CATEGORY = CATEGORY
    OUTPUT_NODE = True  # it writes the merged file even when nothing downstream is connected
    RETURN_TYPES = ("SELMA_EXPERT", "STRING")
    RETURN_NAMES = ("expert", "report")
    OUTPUT_TOOLTIPS = (
        "the merged expert (also saved in models/loras/selma/)",
        "the merge report: ranks, energy kept, error",
    )
    FUNCTION = "merge"

    @classmethod
    def INPUT_TYPES(cls):
        d = MergeConfig()
        optional = {
            f"expert_{k}": ("SELMA_EXPERT", {"tooltip": "another expert to merge"}) for k in range(2, SOCKETS + 1)
        }
        optional["expert_files"] = (
            "STRING",
            {"default": "", "tooltip": "more experts: files in models/loras, comma-separated (after the sockets)"},
        )
        optional["overwrite"] = (  # last: older saved workflows keep their widget values
            "BOOLEAN",
            {"default": False, "tooltip": "replace save_name even if it holds another merge (a rerun always may)"},
        )
        return {
            "required": {
                "expert_1": ("SELMA_EXPERT", {"tooltip": "the first expert (weights follow the socket order)"}),
                "method": (list(METHODS), {"default": d.method, "tooltip": "linear = SELMA's exact average"}),
                "weights": (
                    "STRING",
                    {"default": "", "tooltip": "comma-separated, one per expert; empty = 1/K (1 for cat and ties)"},
                ),
                "rank": ("INT", {"default": 0, "min": 0, "max": 4096, "tooltip": "0 = exact / the inputs' rank"}),
                "density": (
                    "FLOAT",
                    {"default": d.density, "min": 0.01, "max": 1.0, "step": 0.01, "tooltip": "ties/dare/magnitude"},
                ),
                "seed": ("INT", {"default": d.seed, "min": 0, "max": 0x7FFFFFFF, "tooltip": "dare's drops"}),
                "save_name": ("STRING", {"default": "selma/merged.safetensors", "tooltip": "under models/loras"}),
            },
            "optional": optional,
        }

    def merge(
        self, expert_1, method, weights, rank, density, seed, save_name, expert_files="", overwrite=False, **sockets
    ):
        from ..selma.merging.merge_files import merge_expert_files

        refs = [expert_1, *(sockets[f"expert_{k}"] for k in range(2, SOCKETS + 1) if sockets.get(f"expert_{k}"))]
        names = [n.strip() for n in expert_files.split(",") if n.strip()]
        refs += [ExpertRef.from_file(expert_file_path(name, LORA_METHOD)) for name in names]
        config = MergeConfig(method, weights=parse_weights(weights), rank=rank or None, density=density, seed=seed)
        output = save_path(save_name)
        merged = merge_expert_files(refs, config, output, overwrite=overwrite, on_progress=progress_reporter(1))
        return {"ui": {"text": [merged.summary()]}, "result": (merged.as_ref(), merged.result.report_text())}


NODE_CLASS_MAPPINGS = {"SelmaMergeExperts": SelmaMergeExperts}
NODE_DISPLAY_NAME_MAPPINGS = {"SelmaMergeExperts": "SELMA Merge Experts"}
