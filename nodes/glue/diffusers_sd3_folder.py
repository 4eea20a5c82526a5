"""A diffusers SD3 / SD3.5 folder's transformer as ComfyUI's MODEL, for sizes ComfyUI's model list does not know.

ComfyUI reads an MMDiT's size from its weights (`detect_unet_config`) but then only accepts the published SD3
variants (16 latent channels, ...). This builds ComfyUI's own SD3 model (`comfy.model_base.SD3`) from the detected
config of the folder's weights, renamed by ComfyUI's own map (`convert_diffusers_mmdit`), with the VAE's scaling
and shift as the latent format and the scheduler's shift as the sampling shift. ComfyUI's MMDiT is 64 channels per
block (its depth is both), which is what SD3 and SD3.5 are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .diffusers_folder import DiffusersFolderError, _read_config, _weights


def load_sd3_model(folder: Path) -> Any:
    """The folder's transformer as a ComfyUI MODEL (a ModelPatcher over `comfy.model_base.SD3`)."""
    import comfy.latent_formats
    import comfy.model_detection
    import comfy.model_management
    import comfy.model_patcher
    import comfy.supported_models

    folder = Path(folder)
    config = _read_config(folder, "transformer")
    if config["num_attention_heads"] * config["attention_head_dim"] != 64 * config["num_layers"]:
        raise DiffusersFolderError(
            f"{folder / 'transformer'}: width {config['num_attention_heads'] * config['attention_head_dim']} for "
            f"{config['num_layers']} blocks; ComfyUI's MMDiT has 64 channels per block (SD3 / SD3.5 do)"
        )
    converted = comfy.model_detection.convert_diffusers_mmdit(_weights(folder, "transformer"), "")
    if converted is None:
        raise DiffusersFolderError(f"{folder / 'transformer'} does not hold SD3Transformer2DModel weights")
    unet_config = comfy.model_detection.detect_unet_config(converted, "")
    vae_config = _read_config(folder, "vae")
    scheduler = _read_config(folder, "scheduler", "scheduler_config.json")

    class LatentFormat(comfy.latent_formats.SD3):
        latent_channels = int(vae_config["latent_channels"])
        scale_factor = float(vae_config.get("scaling_factor", 1.5305))
        shift_factor = float(vae_config.get("shift_factor") or 0.0)

    class ModelConfig(comfy.supported_models.SD3):
        latent_format = LatentFormat
        sampling_settings = {"shift": float(scheduler.get("shift", 3.0))}

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
            f"{folder / 'transformer'} does not fit the SD3 model built from it: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    offload = comfy.model_management.unet_offload_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload)
