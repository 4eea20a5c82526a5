"""ComfyUI nodes: thin adapters over the `selma` core. Node ids start with 'Selma' and never change."""

from . import (
    apply_expert_nodes,
    compare_nodes,
    dataset_nodes,
    merge_nodes,
    prompt_nodes,
    style_inject_nodes,
    training_nodes,
)

NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
for _module in (
    prompt_nodes,
    dataset_nodes,
    training_nodes,
    merge_nodes,
    apply_expert_nodes,
    compare_nodes,
    style_inject_nodes,
):
    NODE_CLASS_MAPPINGS.update(_module.NODE_CLASS_MAPPINGS)
    NODE_DISPLAY_NAME_MAPPINGS.update(_module.NODE_DISPLAY_NAME_MAPPINGS)
