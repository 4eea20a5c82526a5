"""A diffusers SD-family folder as ComfyUI's MODEL, CLIP and VAE, for architectures ComfyUI does not detect.

ComfyUI's checkpoint loaders recognise a model by matching its shapes against the published architectures
(SD1.x needs 320 channels and a 768-wide text encoder, ...), so a model of our own size such as the shipped
shapes model loads nowhere. This builds the three from the folder's own configs instead:

- MODEL: ComfyUI's own UNet (`comfy.ldm...openaimodel.UNetModel` in a `BaseModel`) from a `unet_config` derived
  from diffusers' config, weights renamed with ComfyUI's own map (`comfy.utils.unet_to_diffusers`), eps or v
  prediction on the scaled-linear schedule, the VAE's scaling factor as the latent format. LoRA patches, SELMA
  training, StyleInject and the samplers then work on it as on any SD1.x model.
- CLIP: ComfyUI's own CLIP text model with the folder's config and tokenizer (its special tokens, its length).
- VAE: the diffusers `AutoencoderKL` itself inside ComfyUI's VAE object (ComfyUI's VAE hard-codes 32-group
  normalisation; small VAEs use fewer groups), with the folder's down-scaling factor.

`comfy_unet_config` and `vae_scale` are pure, so they test without ComfyUI.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from ...selma.models.unet_names import UnetLayout


class DiffusersFolderError(ValueError):
    """The folder is not a diffusers SD-family model this loader can build."""


def comfy_unet_config(config: Mapping[str, Any]) -> dict:
    """ComfyUI's `unet_config` for a diffusers `UNet2DConditionModel` config (the keys ComfyUI's own detection
    writes for SD1.x: per-layer transformer depths, shallow level first; the output list is popped from its end)."""
    try:
        layout = UnetLayout.from_config(config)  # per layer, its transformer depth (the block types checked)
    except ValueError as e:
        raise DiffusersFolderError(f"{e}; this loader builds SD1.x/2.x-style UNets") from None
    if config.get("addition_embed_type") or config.get("class_embed_type"):
        raise DiffusersFolderError(
            "this UNet has embeddings the loader does not build (class/added embeddings); it builds SD1.x/2.x-style "
            "UNets (CrossAttn/Down/Up blocks, no added embeddings)"
        )
    channels = list(config["block_out_channels"])
    per_level = config["layers_per_block"]
    depth = config.get("transformer_layers_per_block", 1)
    if not isinstance(depth, int) or not isinstance(per_level, int):
        raise DiffusersFolderError("per-level layers_per_block / transformer_layers_per_block are not supported")
    heads = config.get("num_attention_heads") or config.get("attention_head_dim", 8)  # diffusers' old name
    if not isinstance(heads, int):
        raise DiffusersFolderError("per-level attention heads are not supported")
    if any(c % channels[0] for c in channels):
        raise DiffusersFolderError(f"block_out_channels {channels} are not multiples of the first")
    if config.get("norm_num_groups", 32) != 32:
        raise DiffusersFolderError(
            f"norm_num_groups is {config['norm_num_groups']}; ComfyUI's UNet normalises in 32 groups"
        )
    return {
        "use_checkpoint": False,
        "image_size": config.get("sample_size", 32),
        "in_channels": config["in_channels"],
        "out_channels": config["out_channels"],
        "model_channels": channels[0],
        "channel_mult": [c // channels[0] for c in channels],
        "num_res_blocks": [len(level) for level in layout.down],
        "transformer_depth": [d for level in layout.down for d in level],
        "transformer_depth_output": [d for block in reversed(layout.up) for d in block],  # shallow level first
        "transformer_depth_middle": -1 if layout.mid is None else layout.mid,
        "context_dim": config["cross_attention_dim"],
        "num_heads": heads,
        "num_head_channels": -1,
        "use_spatial_transformer": True,
        "use_linear_in_transformer": bool(config.get("use_linear_projection", False)),
        "legacy": False,
        "adm_in_channels": None,
        "use_temporal_attention": False,
        "use_temporal_resblock": False,
    }


def vae_scale(config: Mapping[str, Any]) -> int:
    """How many pixels one latent covers along a side: 2 per down-sampling level (all but the last)."""
    return 2 ** (len(config["block_out_channels"]) - 1)


def read_sample_size(folder: Path) -> int:
    """The latent side the UNet was trained on (its config's `sample_size`)."""
    return int(_read_config(Path(folder), "unet")["sample_size"])


def _read_config(folder: Path, part: str, name: str = "config.json") -> dict:
    path = folder / part / name
    if not path.is_file():
        raise DiffusersFolderError(f"{folder} is not a diffusers model folder: {part}/{name} is missing")
    return json.loads(path.read_text(encoding="utf-8"))


def _weights(folder: Path, part: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted((folder / part).glob("*.safetensors"))
    if not files:
        raise DiffusersFolderError(f"{folder / part} holds no .safetensors weights")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(str(file)))
    return state


def load_model(folder: Path) -> Any:
    """The folder's UNet as a ComfyUI MODEL (a ModelPatcher over a `BaseModel`)."""
    import comfy.latent_formats
    import comfy.model_management
    import comfy.model_patcher
    import comfy.supported_models_base
    import comfy.utils

    diffusers_config = _read_config(folder, "unet")
    unet_config = comfy_unet_config(diffusers_config)
    scheduler = _read_config(folder, "scheduler", "scheduler_config.json")
    if scheduler.get("beta_schedule", "scaled_linear") != "scaled_linear":
        raise DiffusersFolderError(f"{folder}: beta_schedule {scheduler['beta_schedule']!r}; only 'scaled_linear'")
    vae_config = _read_config(folder, "vae")

    class LatentFormat(comfy.latent_formats.LatentFormat):
        scale_factor = float(vae_config.get("scaling_factor", 0.18215))
        latent_channels = int(vae_config["latent_channels"])

    prediction = scheduler.get("prediction_type", "epsilon")
    if prediction not in ("epsilon", "v_prediction"):
        raise DiffusersFolderError(f"{folder}: prediction_type {prediction!r}; only 'epsilon' and 'v_prediction'")

    class ModelConfig(comfy.supported_models_base.BASE):
        unet_extra_config = {}  # the heads are in unet_config already
        latent_format = LatentFormat
        sampling_settings = {
            "linear_start": scheduler.get("beta_start", 0.00085),
            "linear_end": scheduler.get("beta_end", 0.012),
            "timesteps": scheduler.get("num_train_timesteps", 1000),
        }
        memory_usage_factor = 1.0

        def model_type(self, state_dict, prefix=""):
            import comfy.model_base

            return (
                comfy.model_base.ModelType.V_PREDICTION
                if prediction == "v_prediction"
                else (comfy.model_base.ModelType.EPS)
            )

    state = _weights(folder, "unet")
    names = comfy.utils.unet_to_diffusers(unet_config)  # diffusers name -> ComfyUI's
    renamed = {ldm: state.pop(name) for name, ldm in names.items() if name in state}
    if state:
        raise DiffusersFolderError(f"{folder / 'unet'}: weights the UNet has no place for: {sorted(state)[:5]}")
    return build_model(ModelConfig(unet_config), renamed, folder / "unet")


def vae_latent_format(base: type, vae_config: Mapping[str, Any]) -> type:
    """ComfyUI's latent format `base` (latent_formats.Flux, .SD3) with the folder VAE's channels, scaling and shift.
    Those formats set their factors in `__init__`, so they are set there too (class attributes would be shadowed);
    the preview colours and decoder of `base` fit its own channel count only, so another count previews without."""
    channels = int(vae_config["latent_channels"])

    def __init__(self) -> None:
        base.__init__(self)
        self.scale_factor = float(vae_config.get("scaling_factor") or self.scale_factor)
        self.shift_factor = float(vae_config.get("shift_factor") or 0.0)
        if channels != base.latent_channels:
            self.latent_rgb_factors = self.latent_rgb_factors_bias = self.taesd_decoder_name = None

    return type(f"Folder{base.__name__}", (base,), {"latent_channels": channels, "__init__": __init__})


def build_model(model_config: Any, state: dict[str, torch.Tensor], where: Path) -> Any:
    """A ComfyUI MODEL (ModelPatcher) of `model_config` holding the weights `state` (ComfyUI's names), with the
    dtype and devices ComfyUI's own loaders would pick; `where` names the weights in the error if they do not fit."""
    import comfy.model_management
    import comfy.model_patcher

    load_device = comfy.model_management.get_torch_device()
    parameters = sum(t.numel() for t in state.values())
    dtypes = type(model_config).supported_inference_dtypes
    dtype = comfy.model_management.unet_dtype(model_params=parameters, supported_dtypes=dtypes)
    model_config.set_inference_dtype(dtype, comfy.model_management.unet_manual_cast(dtype, load_device, dtypes))
    model = model_config.get_model(state, device=comfy.model_management.unet_inital_load_device(parameters, dtype))
    missing, unexpected = model.diffusion_model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise DiffusersFolderError(
            f"{where} does not fit the model built from its config: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    offload = comfy.model_management.unet_offload_device()
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload)


def clip_l_parts(folder: Path, part: str = "text_encoder", tokenizer_part: str = "tokenizer") -> tuple[Any, Any, dict]:
    """(tokenizer class, text model class, its config) of a folder's CLIP text encoder, as ComfyUI builds them."""
    import comfy.sd1_clip

    config = _read_config(folder, part)
    tokenizer_dir = folder / tokenizer_part
    if not tokenizer_dir.is_dir():
        raise DiffusersFolderError(f"{folder} is not a diffusers model folder: {tokenizer_part}/ is missing")
    max_length = int(config["max_position_embeddings"])
    special = {"start": config["bos_token_id"], "end": config["eos_token_id"], "pad": config["pad_token_id"]}
    tokenizer = functools.partial(
        comfy.sd1_clip.SDTokenizer,
        tokenizer_path=str(tokenizer_dir),
        max_length=max_length,
        embedding_size=int(config["hidden_size"]),
        pad_token=config["pad_token_id"],
    )
    text_model = functools.partial(
        comfy.sd1_clip.SDClipModel,
        textmodel_json_config=config,
        max_length=max_length,
        special_tokens=special,
        return_projected_pooled=False,
    )
    return tokenizer, text_model, config


def clip_l_state(folder: Path, embedding_rows: int, part: str = "text_encoder") -> dict[str, torch.Tensor]:
    """A folder's CLIP text encoder weights as ComfyUI's CLIP text model names them."""
    state = {  # transformers 5 saves a CLIPTextModel without its `text_model.` prefix; ComfyUI's keeps it
        key if key.startswith(("text_model.", "text_projection.")) else f"text_model.{key}": value
        for key, value in _weights(folder, part).items()
    }
    # ComfyUI's CLIP embedding has CLIP's 49,408 rows whatever the config says; a smaller vocabulary fills the
    # first rows (its token ids never reach the rest)
    embedding = state["text_model.embeddings.token_embedding.weight"]
    if embedding.shape[0] < embedding_rows:
        state["text_model.embeddings.token_embedding.weight"] = torch.cat(
            [embedding, embedding.new_zeros(embedding_rows - embedding.shape[0], embedding.shape[1])]
        )
    return state


def check_loaded(folder: Path, part: str, missing: list[str], unexpected: list[str]) -> None:
    missing = [k for k in missing if not k.endswith(("logit_scale", "text_projection.weight"))]
    if missing or unexpected:
        raise DiffusersFolderError(
            f"{folder / part} does not fit ComfyUI's text model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )


def load_clip(folder: Path) -> Any:
    """The folder's text encoder and tokenizer as a ComfyUI CLIP."""
    import comfy.sd
    import comfy.sd1_clip
    import comfy.supported_models_base

    tokenizer, text_model, _ = clip_l_parts(folder)
    target = comfy.supported_models_base.ClipTarget(
        functools.partial(comfy.sd1_clip.SD1Tokenizer, tokenizer=tokenizer),
        functools.partial(comfy.sd1_clip.SD1ClipModel, clip_model=text_model),
    )
    parameters = sum(p.stat().st_size // 2 for p in (folder / "text_encoder").glob("*.safetensors"))  # fp16
    clip = comfy.sd.CLIP(target, parameters=parameters)
    rows = clip.cond_stage_model.clip_l.transformer.text_model.embeddings.token_embedding.weight.shape[0]
    check_loaded(folder, "text_encoder", *clip.load_sd(clip_l_state(folder, rows)))
    return clip


class _DiffusersAutoencoder(torch.nn.Module):
    """What ComfyUI's VAE object calls on its `first_stage_model`: encode pixels in -1..1 to raw latents (the
    distribution's mean), decode raw latents to -1..1."""

    def __init__(self, autoencoder: torch.nn.Module) -> None:
        super().__init__()
        self.autoencoder = autoencoder

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.encode(pixels).latent_dist.mode()

    def decode(self, latents: torch.Tensor, **_: Any) -> torch.Tensor:
        return self.autoencoder.decode(latents).sample


@contextlib.contextmanager
def _quiet(logger: str = "") -> Iterator[None]:
    """Silence ComfyUI's "No VAE weights detected" warning for the empty VAE this fills in."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def load_vae(folder: Path) -> Any:
    """The folder's `AutoencoderKL` inside a ComfyUI VAE (VAEEncode, VAEDecode and SELMA training use it)."""
    import comfy.model_management
    import comfy.model_patcher
    import comfy.sd
    from diffusers import AutoencoderKL

    config = _read_config(folder, "vae")
    autoencoder = AutoencoderKL.from_pretrained(str(folder / "vae"), torch_dtype=torch.float32).eval()
    autoencoder.requires_grad_(False)
    with _quiet():
        vae = comfy.sd.VAE(sd={})  # ComfyUI's defaults for every attribute; the model goes in below
    vae.first_stage_model = _DiffusersAutoencoder(autoencoder).eval()
    vae.downscale_ratio = vae.upscale_ratio = vae_scale(config)
    vae.latent_channels = int(config["latent_channels"])
    vae.device = comfy.model_management.vae_device()
    vae.vae_dtype = comfy.model_management.vae_dtype(vae.device, vae.working_dtypes)
    vae.first_stage_model.to(vae.vae_dtype)
    vae.output_device = comfy.model_management.intermediate_device()
    offload = comfy.model_management.vae_offload_device()
    vae.patcher = comfy.model_patcher.ModelPatcher(
        vae.first_stage_model, load_device=vae.device, offload_device=offload
    )
    return vae


def load_diffusers_folder(folder: Path) -> tuple[Any, Any, Any]:
    """MODEL, CLIP and VAE of a diffusers SD-family folder (see the module docstring)."""
    folder = Path(folder)
    if not (folder / "model_index.json").is_file():
        raise DiffusersFolderError(f"{folder} is not a diffusers model folder (no model_index.json)")
    return load_model(folder), load_clip(folder), load_vae(folder)
