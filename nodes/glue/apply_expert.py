"""Patch a MODEL with an expert file, the way ComfyUI's own loaders would: shared by the nodes that apply one."""

from __future__ import annotations

from pathlib import Path

from ...selma.experts.dit_lora_files import DIT_FAMILIES, dit_state_dict
from ...selma.experts.lora_files import kohya_state_dict, load_lora_expert


def apply_expert_to_model(model, path: Path, strength: float, method: str = "lora"):
    """A clone of `model` with the expert patched in: LoRA by ComfyUI's own LoRA loader (as LoraLoader does),
    StyleInject by object patches on the UNet's layers."""
    if method not in ("lora", "styleinject"):
        raise ValueError(f"{path} holds a {method!r} expert; SELMA applies 'lora' and 'styleinject' experts")
    if strength == 0:
        return model
    if method == "styleinject":
        from ...selma.experts.style_inject_files import load_style_inject_expert
        from .style_inject_patch import patch_model_with_style_inject

        return patch_model_with_style_inject(model, load_style_inject_expert(path), strength)
    import comfy.sd

    expert = load_lora_expert(path)
    dit = expert.metadata.get("family") in DIT_FAMILIES  # FLUX / SD3: diffusers' keys, which ComfyUI maps
    tensors = dit_state_dict(expert) if dit else kohya_state_dict(expert)
    patched, _ = comfy.sd.load_lora_for_models(model, None, tensors, strength, 0)
    return patched
