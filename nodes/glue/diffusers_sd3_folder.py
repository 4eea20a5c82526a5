"""A diffusers SD3 / SD3.5 folder as ComfyUI's MODEL, CLIP and VAE, for sizes ComfyUI's model list does not know.

ComfyUI reads an MMDiT's size from its weights (`detect_unet_config`) but then only accepts the published SD3
variants (16 latent channels, ...). This builds ComfyUI's own SD3 model (`comfy.model_base.SD3`) from the detected
config of the folder's weights, renamed by ComfyUI's own map (`convert_diffusers_mmdit`), with the VAE's scaling
and shift as the latent format and the scheduler's shift as the sampling shift. ComfyUI's MMDiT is 64 channels per
block (its depth is both), which is what SD3 and SD3.5 are. CLIP is ComfyUI's SD3 text encoder (`SD3ClipModel`:
CLIP-L and CLIP-G penultimate features padded to T5's 4096 and stacked on T5's, the two pooled outputs joined)
over the folder's three encoders and tokenizers; the VAE is the folder's, as for SD.
"""

from __future__ import annotations

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

    class ModelConfig(comfy.supported_models.SD3):
        latent_format = vae_latent_format(comfy.latent_formats.SD3, vae_config)
        sampling_settings = {"shift": float(scheduler.get("shift", 3.0))}

    return build_model(ModelConfig(unet_config), converted, folder / "transformer")


def load_sd3_clip(folder: Path) -> Any:
    """The folder's CLIP-L, CLIP-G and T5 as one ComfyUI CLIP, encoding as ComfyUI encodes for SD3."""
    import comfy.sd
    import comfy.sd1_clip
    import comfy.supported_models_base
    import comfy.text_encoders.sd3_clip
    import comfy.text_encoders.t5
    from transformers import AutoTokenizer

    folder = Path(folder)
    l_tokenizer, l_model, _ = clip_l_parts(folder, "text_encoder", "tokenizer")
    g_tokenizer, g_model, _ = clip_l_parts(folder, "text_encoder_2", "tokenizer_2")
    t5_config = _read_config(folder, "text_encoder_3")
    if int(t5_config["d_model"]) != 4096:
        raise DiffusersFolderError(f"{folder / 'text_encoder_3'}: T5 width {t5_config['d_model']}; SD3's is 4096")
    t5_special = {"end": t5_config["eos_token_id"], "pad": t5_config["pad_token_id"]}

    class Tokenizer(comfy.text_encoders.sd3_clip.SD3Tokenizer):
        def __init__(self, embedding_directory=None, tokenizer_data={}):  # noqa: B006 (ComfyUI's signature)
            self.clip_l = l_tokenizer(embedding_directory=embedding_directory, tokenizer_data=tokenizer_data)
            self.clip_g = g_tokenizer(  # SDXLClipGTokenizer's settings
                embedding_directory=embedding_directory, tokenizer_data=tokenizer_data, pad_with_end=False,
                embedding_key="clip_g",
            )  # fmt: skip
            self.t5xxl = comfy.sd1_clip.SDTokenizer(  # T5XXLTokenizer's settings, the folder's tokenizer
                str(folder / "tokenizer_3"), embedding_directory=embedding_directory, pad_with_end=False,
                embedding_size=4096, embedding_key="t5xxl", tokenizer_class=AutoTokenizer, has_start_token=False,
                pad_to_max_length=False, max_length=99999999, min_length=77, pad_token=t5_special["pad"],
                end_token=t5_special["end"], tokenizer_data=tokenizer_data,
            )  # fmt: skip

    class ClipModel(comfy.text_encoders.sd3_clip.SD3ClipModel):
        def __init__(self, device="cpu", dtype=None, model_options={}):  # noqa: B006 (ComfyUI's signature)
            torch.nn.Module.__init__(self)
            self.clip_l = l_model(  # SD3ClipModel's CLIP-L: penultimate layer, no final norm, unprojected pool
                device=device, dtype=dtype, layer="hidden", layer_idx=-2, layer_norm_hidden_state=False,
                model_options=model_options,
            )  # fmt: skip
            self.clip_g = g_model(  # SDXLClipG's: penultimate layer, projected pool
                device=device, dtype=dtype, layer="hidden", layer_idx=-2, layer_norm_hidden_state=False,
                return_projected_pooled=True, model_options={**model_options, "model_name": "clip_g"},
            )  # fmt: skip
            self.t5xxl = comfy.sd1_clip.SDClipModel(
                device=device, layer="last", textmodel_json_config=t5_config, dtype=dtype,
                special_tokens=t5_special, model_class=comfy.text_encoders.t5.T5,
                model_options={**model_options, "model_name": "t5xxl"},
            )  # fmt: skip
            self.t5_attention_mask = False
            self.dtypes = {dtype}

    parts = ("text_encoder", "text_encoder_2", "text_encoder_3")
    parameters = sum(p.stat().st_size // 2 for part in parts for p in (folder / part).glob("*.safetensors"))
    clip = comfy.sd.CLIP(comfy.supported_models_base.ClipTarget(Tokenizer, ClipModel), parameters=parameters)
    encoders = clip.cond_stage_model
    for part, encoder in (("text_encoder", encoders.clip_l), ("text_encoder_2", encoders.clip_g)):
        rows = encoder.transformer.text_model.embeddings.token_embedding.weight.shape[0]
        check_loaded(folder, part, *encoder.load_sd(clip_l_state(folder, rows, part)))
    check_loaded(folder, "text_encoder_3", *encoders.t5xxl.load_sd(_weights(folder, "text_encoder_3")))
    return clip


def load_sd3_folder(folder: Path) -> tuple[Any, Any, Any]:
    """MODEL, CLIP and VAE of a diffusers SD3 / SD3.5 folder (see the module docstring)."""
    folder = Path(folder)
    if not (folder / "model_index.json").is_file():
        raise DiffusersFolderError(f"{folder} is not a diffusers model folder (no model_index.json)")
    return load_sd3_model(folder), load_sd3_clip(folder), load_vae(folder)
