"""A diffusers FLUX.1 folder as ComfyUI's MODEL, for sizes ComfyUI's detection does not know.

ComfyUI recognises a FLUX checkpoint by its key names and then assumes FLUX.1's published sizes (width 3072, T5
width 4096, 16 latent channels), so a FLUX-architecture model of another size (the tiny test models, a distilled
one) loads wrong or not at all. This builds ComfyUI's own FLUX (`comfy.ldm.flux.model.Flux` in
`comfy.model_base.Flux`) from the folder's transformer config, with the weights renamed by ComfyUI's own map
(`comfy.model_detection.convert_diffusers_mmdit`: to_q/to_k/to_v fused into qkv, and so on) and the VAE's scaling
and shift as the latent format. LoRA patches (stock LoraLoader), samplers and SELMA training then work on it as on
any FLUX model.

`comfy_flux_config` is pure, so it tests without ComfyUI.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .diffusers_folder import DiffusersFolderError, _read_config, _weights


def comfy_flux_config(config: Mapping[str, Any]) -> dict:
    """ComfyUI's FLUX `unet_config` for a diffusers `FluxTransformer2DModel` config. diffusers counts the input
    channels after the 2x2 packing (64 for FLUX.1's 16 latent channels); ComfyUI packs inside the model."""
    if config.get("patch_size", 1) != 1:
        raise DiffusersFolderError(f"patch_size {config['patch_size']}: FLUX transformers pack 2x2 with patch_size 1")
    packed_in = int(config["in_channels"])
    packed_out = int(config.get("out_channels") or packed_in)
    if packed_in % 4 or packed_out % 4:
        raise DiffusersFolderError(f"in/out channels {packed_in}/{packed_out} are not 4 x the latent channels")
    heads, head_dim = int(config["num_attention_heads"]), int(config["attention_head_dim"])
    axes = [int(a) for a in config.get("axes_dims_rope", (16, 56, 56))]
    if sum(axes) != head_dim:
        raise DiffusersFolderError(f"axes_dims_rope {axes} do not add up to attention_head_dim {head_dim}")
    return {
        "image_model": "flux",
        "in_channels": packed_in // 4,
        "out_channels": packed_out // 4,
        "patch_size": 2,
        "vec_in_dim": int(config["pooled_projection_dim"]),
        "context_in_dim": int(config["joint_attention_dim"]),
        "hidden_size": heads * head_dim,
        "mlp_ratio": 4.0,
        "num_heads": heads,
        "depth": int(config["num_layers"]),
        "depth_single_blocks": int(config["num_single_layers"]),
        "axes_dim": axes,
        "theta": 10000,
        "qkv_bias": True,
        "guidance_embed": bool(config.get("guidance_embeds", False)),
    }


def load_flux_model(folder: Path) -> Any:
    """The folder's transformer as a ComfyUI MODEL (a ModelPatcher over `comfy.model_base.Flux`)."""
    import comfy.latent_formats
    import comfy.model_detection
    import comfy.model_management
    import comfy.model_patcher
    import comfy.supported_models

    folder = Path(folder)
    unet_config = comfy_flux_config(_read_config(folder, "transformer"))
    vae_config = _read_config(folder, "vae")
    scheduler = _read_config(folder, "scheduler", "scheduler_config.json")

    class LatentFormat(comfy.latent_formats.Flux):
        latent_channels = int(vae_config["latent_channels"])
        scale_factor = float(vae_config.get("scaling_factor", 0.3611))
        shift_factor = float(vae_config.get("shift_factor") or 0.0)

    class ModelConfig(comfy.supported_models.Flux):
        latent_format = LatentFormat
        # ComfyUI samples FLUX with a resolution-independent shift; the folder's static one where it has one
        sampling_settings = {} if scheduler.get("use_dynamic_shifting") else {"shift": scheduler.get("shift", 1.0)}

    converted = comfy.model_detection.convert_diffusers_mmdit(_weights(folder, "transformer"), "")
    if converted is None:
        raise DiffusersFolderError(f"{folder / 'transformer'} does not hold FluxTransformer2DModel weights")
    model_config = ModelConfig(unet_config)
    load_device = comfy.model_management.get_torch_device()
    dtypes = ModelConfig.supported_inference_dtypes
    parameters = sum(t.numel() for t in converted.values())
    dtype = comfy.model_management.unet_dtype(model_params=parameters, supported_dtypes=dtypes)
    model_config.set_inference_dtype(dtype, comfy.model_management.unet_manual_cast(dtype, load_device, dtypes))
    model = model_config.get_model(converted, device=comfy.model_management.unet_inital_load_device(parameters, dtype))
    missing, unexpected = model.diffusion_model.load_state_dict(converted, strict=False)
    if missing or unexpected:
        raise DiffusersFolderError(
            f"{folder / 'transformer'} does not fit the FLUX model built from its config: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    offload = comfy.model_management.unet_offload_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload)
