"""The shapes model: a small Stable-Diffusion-family text-to-image pipeline for the shapes world, trained from
scratch by `tools/train_shapes_model.py` (`selma.shapes.model_training`) and shipped in the package.

It is the real architecture at a small size: a `UNet2DConditionModel` (6.7M parameters) denoising 4 x 16 x 16
latents with cross-attention at 8 x 8 and 4 x 4, an `AutoencoderKL` that maps 64 x 64 pictures to those latents
(factor 4), a `CLIPTextModel` and a `CLIPTokenizer` whose byte-level BPE makes each word of the world one token
(any other text still tokenizes, byte by byte). Loaded with `StableDiffusionPipeline.from_pretrained`, it trains, takes
experts, merges and renders like SD1.5 does.

    pipe = load_shapes_pipeline()          # the shipped, trained model (selma/models/shapes/)
    pipe("two red circles above a blue square", height=64, width=64).images[0]

`model = "shapes"` names it in `selma run` configs, on the command line and in the Python API
(`selma.models.pipelines.load_pipeline("shapes")`).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline

SHAPES_MODEL = "shapes"  # the model name that means the shipped shapes model
RESOLUTION = 64  # the pictures it was trained on (pixels); its latents are RESOLUTION // 4
MAX_TOKENS = 48
WEIGHTS_DIR = Path(__file__).parents[1] / "models" / "shapes"  # package data of the models stage
REPORT_NAME = "training_report.json"


def world_words() -> list[str]:
    """Every word the world's captions and prompts use (lower case, first seen first), for the tokenizer."""
    from ..llm.template_vocab import vocab
    from .world import caption, random_scene

    words = vocab().shapes
    texts = [*words.shapes, *words.colours, *words.sizes, *words.count_words, *words.relations]
    texts += [*words.openers, *words.verbs, *words.joiners, *words.endings, "circles squares triangles"]
    rng = random.Random(0)
    texts += [caption(random_scene(rng), rng) for _ in range(3000)]
    from ..llm.grammars.shapes import shapes_colour, shapes_counting, shapes_spatial

    for grammar in (shapes_colour, shapes_counting, shapes_spatial):
        texts += [grammar(random.Random(seed), 40)[0] for seed in range(500)]
    return list(dict.fromkeys(w for t in texts for w in re.findall(r"[a-z]+", t.lower())))


def unet_config() -> dict:
    return {
        "sample_size": RESOLUTION // 4,
        "in_channels": 4,
        "out_channels": 4,
        # cross-attention at 8 x 8 and 4 x 4 (at 16 x 16 it doubled the step time on 2 CPU cores)
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        "block_out_channels": (64, 128, 128),
        "layers_per_block": 1,
        "cross_attention_dim": 128,
        "attention_head_dim": 8,
        "norm_num_groups": 32,
    }


def vae_config() -> dict:
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * 3,
        "up_block_types": ("UpDecoderBlock2D",) * 3,
        "block_out_channels": (16, 32, 64),
        "layers_per_block": 1,
        "latent_channels": 4,
        "norm_num_groups": 16,
        "sample_size": RESOLUTION,
    }


def scheduler_config() -> dict:
    return {
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "prediction_type": "epsilon",
        "timestep_spacing": "trailing",
        "steps_offset": 1,
    }


def build_untrained_pipeline(seed: int = 0) -> StableDiffusionPipeline:
    """The shapes model's architecture with fresh random weights (what training starts from)."""
    import torch
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from ..testing.tiny_models import build_clip_tokenizer

    tokenizer = build_clip_tokenizer(world_words(), max_length=MAX_TOKENS)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_config = CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=3,
            num_attention_heads=4,
            max_position_embeddings=MAX_TOKENS,
            projection_dim=128,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        text_encoder = CLIPTextModel(text_config)
        vae = AutoencoderKL(**vae_config())
        unet = UNet2DConditionModel(**unet_config())
    scheduler = DPMSolverMultistepScheduler(**scheduler_config())
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def shapes_model_dir() -> Path:
    """The shipped model's diffusers folder; a clear error where this installation lacks it."""
    from ..models.pipelines import named_model_dir

    return named_model_dir(SHAPES_MODEL)


def fingerprint(folder: Path) -> dict:
    """sha256 of each weights file and a short one over all of them (what fingerprint.json beside them says)."""
    import hashlib

    files = {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(folder.rglob("*.safetensors"))}  # fmt: skip
    whole = hashlib.sha256("".join(f"{k}:{v}\n" for k, v in files.items()).encode()).hexdigest()
    return {"sha256": whole[:16], "files": files}


def training_report() -> dict:
    """What the shipped model was trained on and how (steps, time, losses), as the training script wrote it."""
    return json.loads((shapes_model_dir() / REPORT_NAME).read_text(encoding="utf-8"))


def load_shapes_pipeline(device: str = "cpu", dtype=None) -> StableDiffusionPipeline:
    """The shipped, trained shapes model as a diffusers `StableDiffusionPipeline`."""
    import torch
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(  # stored in float16: name the dtype, or layers disagree
        str(shapes_model_dir()), torch_dtype=dtype or torch.float32, safety_checker=None, requires_safety_checker=False
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
