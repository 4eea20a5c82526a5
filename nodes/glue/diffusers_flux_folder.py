"""A diffusers FLUX.1 folder as ComfyUI's MODEL, CLIP and VAE, for sizes ComfyUI's detection does not know.

ComfyUI recognises a FLUX checkpoint by its key names and then assumes FLUX.1's published sizes (width 3072, T5
width 4096, 16 latent channels), so a FLUX-architecture model of another size (the tiny test models, a distilled
one) loads wrong or not at all. This builds ComfyUI's own FLUX (`comfy.ldm.flux.model.Flux` in
`comfy.model_base.Flux`) from the folder's transformer config, with the weights renamed by ComfyUI's own map
(`comfy.model_detection.convert_diffusers_mmdit`: to_q/to_k/to_v fused into qkv, and so on) and the VAE's scaling
and shift as the latent format. LoRA patches (stock LoraLoader), samplers and SELMA training then work on it as on
any FLUX model. CLIP is ComfyUI's FLUX text encoder pair (CLIP-L pooled + T5 hidden states, its `FluxClipModel`
and `FluxTokenizer`) over the folder's two encoders, configs and tokenizers; the VAE is the folder's, as for SD.

`comfy_flux_config` is pure, so it tests without ComfyUI.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .diffusers_folder import (
    DiffusersFolderError,
    _read_config,
    _weights,
    build_model,
    check_loaded,
    clip_l_parts,
    clip_l_state,
    load_vae,
    vae_latent_format,
)


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
    import comfy.supported_models

    folder = Path(folder)
    unet_config = comfy_flux_config(_read_config(folder, "transformer"))
    vae_config = _read_config(folder, "vae")
    scheduler = _read_config(folder, "scheduler", "scheduler_config.json")

    class ModelConfig(comfy.supported_models.Flux):
        latent_format = vae_latent_format(comfy.latent_formats.Flux, vae_config)
        # ComfyUI samples FLUX with a resolution-independent shift; the folder's static one where it has one
        sampling_settings = {} if scheduler.get("use_dynamic_shifting") else {"shift": scheduler.get("shift", 1.0)}

    converted = comfy.model_detection.convert_diffusers_mmdit(_weights(folder, "transformer"), "")
    if converted is None:
        raise DiffusersFolderError(f"{folder / 'transformer'} does not hold FluxTransformer2DModel weights")
    return build_model(ModelConfig(unet_config), converted, folder / "transformer")


def load_flux_clip(folder: Path) -> Any:
    """The folder's CLIP-L and T5 encoders as one ComfyUI CLIP, encoding as ComfyUI encodes for FLUX."""
    import comfy.sd
    import comfy.sd1_clip
    import comfy.supported_models_base
    import comfy.text_encoders.flux
    import comfy.text_encoders.t5
    from transformers import AutoTokenizer

    folder = Path(folder)
    clip_tokenizer, clip_model, _ = clip_l_parts(folder)
    t5_config = _read_config(folder, "text_encoder_2")
    t5_special = {"end": t5_config["eos_token_id"], "pad": t5_config["pad_token_id"]}

    class Tokenizer(comfy.text_encoders.flux.FluxTokenizer):
        def __init__(self, embedding_directory=None, tokenizer_data={}):  # noqa: B006 (ComfyUI's signature)
            self.clip_l = clip_tokenizer(embedding_directory=embedding_directory, tokenizer_data=tokenizer_data)
            self.t5xxl = comfy.sd1_clip.SDTokenizer(  # T5XXLTokenizer's settings, the folder's tokenizer
                str(folder / "tokenizer_2"),
                embedding_directory=embedding_directory,
                pad_with_end=False,
                embedding_size=int(t5_config["d_model"]),
                embedding_key="t5xxl",
                tokenizer_class=AutoTokenizer,
                has_start_token=False,
                pad_to_max_length=False,
                max_length=99999999,
                min_length=77,
                pad_token=t5_special["pad"],
                end_token=t5_special["end"],
                tokenizer_data=tokenizer_data,
            )

    class ClipModel(comfy.text_encoders.flux.FluxClipModel):
        def __init__(self, device="cpu", dtype=None, model_options={}):  # noqa: B006 (ComfyUI's signature)
            torch.nn.Module.__init__(self)
            self.clip_l = clip_model(device=device, dtype=dtype, model_options=model_options)
            self.t5xxl = comfy.sd1_clip.SDClipModel(
                device=device,
                layer="last",
                textmodel_json_config=t5_config,
                dtype=dtype,
                special_tokens=t5_special,
                model_class=comfy.text_encoders.t5.T5,
                model_options={**model_options, "model_name": "t5xxl"},
            )
            self.dtypes = {dtype}

    parameters = sum(
        p.stat().st_size // 2
        for part in ("text_encoder", "text_encoder_2")
        for p in (folder / part).glob("*.safetensors")
    )
    clip = comfy.sd.CLIP(comfy.supported_models_base.ClipTarget(Tokenizer, ClipModel), parameters=parameters)
    encoders = clip.cond_stage_model
    rows = encoders.clip_l.transformer.text_model.embeddings.token_embedding.weight.shape[0]
    check_loaded(folder, "text_encoder", *encoders.clip_l.load_sd(clip_l_state(folder, rows)))
    check_loaded(folder, "text_encoder_2", *encoders.t5xxl.load_sd(_weights(folder, "text_encoder_2")))
    return clip


def load_flux_folder(folder: Path) -> tuple[Any, Any, Any]:
    """MODEL, CLIP and VAE of a diffusers FLUX.1 folder (see the module docstring)."""
    folder = Path(folder)
    if not (folder / "model_index.json").is_file():
        raise DiffusersFolderError(f"{folder} is not a diffusers model folder (no model_index.json)")
    return load_flux_model(folder), load_flux_clip(folder), load_vae(folder)
