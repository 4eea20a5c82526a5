"""ComfyUI nodes: thin adapters over the `selma` core, one file per stage (glue/ is where they meet ComfyUI).
Node ids start with 'Selma' and never change."""

from . import datasets, evaluation, experts, inspection, merging, models, prompts, training

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
for _module in (models, prompts, datasets, training, experts, merging, inspection, evaluation):
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)
