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

from .diffusers_folder import DiffusersFolderError, _read_config, _weights, build_model


def load_sd3_model(folder: Path) -> Any:
    """The folder's transformer as a ComfyUI MODEL (a ModelPatcher over `comfy.model_base.SD3`)."""
    import comfy.latent_formats
    import comfy.model_detection
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

    return build_model(ModelConfig(unet_config), converted, folder / "transformer")
