"""The node that loads a model shipped with SELMA (the shapes world's), which ComfyUI's own loaders cannot detect."""

from __future__ import annotations

from ..selma.models.pipelines import NAMED_MODELS, named_model_dir

CATEGORY = "SELMA/models"


class SelmaLoadShippedModel:
    DESCRIPTION = (
        "Loads a model installed with SELMA — 'shapes', the small text-to-image model of the shapes world, trained "
        "by tools/train_shapes_model.py — as MODEL, CLIP and VAE. Its VAE is 4x (64 px images from 16x16 latents), "
        "so use the latent output here, or an Empty Latent Image of 128x128 (ComfyUI sizes latents for 8x VAEs). "
        "Prompts use the world's words: 'two red circles', 'a blue square to the left of a green triangle'."
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MODEL", "CLIP", "VAE", "LATENT")
    RETURN_NAMES = ("model", "clip", "vae", "latent")
    OUTPUT_TOOLTIPS = (
        "the denoiser (ComfyUI's UNet, built from the model's config)",
        "the text encoder with the world's tokenizer",
        "the VAE",
        "empty latents at the size the model was trained on",
    )
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model_name": (sorted(NAMED_MODELS), {"tooltip": "a model installed with the comfyui-selma package"}),
                "batch_size": ("INT", {"default": 4, "min": 1, "max": 4096, "tooltip": "latents in `latent`"}),
            },
        }

    def load(self, model_name, batch_size):
        import torch

        from .glue.diffusers_folder import load_diffusers_folder, read_sample_size

        folder = named_model_dir(model_name)
        model, clip, vae = load_diffusers_folder(folder)
        channels, size = vae.latent_channels, read_sample_size(folder)
        return model, clip, vae, {"samples": torch.zeros(batch_size, channels, size, size)}


NODE_CLASS_MAPPINGS = {"SelmaLoadShippedModel": SelmaLoadShippedModel}
NODE_DISPLAY_NAME_MAPPINGS = {"SelmaLoadShippedModel": "SELMA Load Shipped Model"}
