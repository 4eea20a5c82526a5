"""The headless denoiser backend: a diffusers Stable Diffusion 1.x/2.x or SDXL pipeline.

Text goes through the pipeline's own `encode_prompt` (so training sees exactly what sampling sees: SDXL's
two encoders, penultimate hidden states and pooled embedding included); the noise schedule is a
`DDPMScheduler` built from the pipeline's scheduler config (its betas and prediction type: eps or v).
The VAE stays in fp32 whatever the weight dtype (SD/SDXL VAEs overflow in fp16) and is used for
encoding only; `predict` feeds SDXL's `text_embeds` and `time_ids`: each image's original size, crop and
training size (the loop passes them, `training.buckets`), as diffusers' SDXL training script computes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..experts.lora_files import fingerprint_unet
from .noise_schedule import PREDICTION_TYPES, add_noise, prediction_target


class DiffusersBackend:
    """A `DenoiserBackend` (and `PreviewRenderer`) over a StableDiffusion(XL)Pipeline."""

    def __init__(
        self, pipeline: Any, *, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> None:
        from diffusers import DDPMScheduler

        for part in ("unet", "vae", "scheduler"):
            if getattr(pipeline, part, None) is None:
                raise ValueError(
                    f"{type(pipeline).__name__} has no {part}; the trainer needs a Stable Diffusion 1.x/2.x or SDXL "
                    "pipeline (UNet + VAE + text encoder)"
                )
        self.pipeline = pipeline
        self.unet = pipeline.unet
        self.module = self.unet
        self.device = torch.device(device) if device is not None else self.unet.device
        self.dtype = dtype or self.unet.dtype
        # nn.Module.to, not ModelMixin.to: diffusers warns on every dtype cast of a model with fp32-kept modules.
        torch.nn.Module.to(self.unet, device=self.device, dtype=self.dtype)
        torch.nn.Module.to(pipeline.vae, device=self.device, dtype=torch.float32)
        for name in ("text_encoder", "text_encoder_2"):
            encoder = getattr(pipeline, name, None)
            if encoder is not None:
                encoder.to(device=self.device, dtype=self.dtype)
                encoder.requires_grad_(False)
        pipeline.vae.requires_grad_(False)
        self.noise_scheduler = DDPMScheduler.from_config(pipeline.scheduler.config)
        self.prediction_type = self.noise_scheduler.config.prediction_type
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"the scheduler's prediction_type={self.prediction_type!r} is not trainable here; "
                f"supported: {PREDICTION_TYPES}"
            )
        self.is_sdxl = getattr(self.unet.config, "addition_embed_type", None) == "text_time"
        self.wants_time_ids = self.is_sdxl  # the loop then adds each image's size and crop to the conditioning
        self.vae_scale_factor = 2 ** (len(pipeline.vae.config.block_out_channels) - 1)
        self._alphas_cumprod = self.noise_scheduler.alphas_cumprod.to(self.device)

    # ------------------------------------------------------------------ DenoiserBackend
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        vae = self.pipeline.vae
        latents = vae.encode(pixels.to(self.device, torch.float32)).latent_dist.mode()
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        return ((latents - shift) * vae.config.scaling_factor).float()

    def encode_prompts(self, prompts: list[str]) -> Any:
        encoded = self.pipeline.encode_prompt(
            prompt=list(prompts), device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=False
        )
        if self.is_sdxl:  # (embeds, negative embeds, pooled, negative pooled)
            return {"encoder_hidden_states": encoded[0], "text_embeds": encoded[2]}
        return encoded[0]

    def sample_timesteps(self, n: int, generator: torch.Generator) -> torch.Tensor:
        steps = self.noise_scheduler.config.num_train_timesteps
        return torch.randint(0, steps, (n,), generator=generator).to(self.device)

    def add_noise(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        # DDPMScheduler.add_noise's formula, without moving its schedule to the device on every call.
        return add_noise(self._alphas_cumprod, latents, noise, timesteps)

    def target(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return prediction_target(self.prediction_type, self._alphas_cumprod, latents, noise, timesteps)

    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, conditioning: Any) -> torch.Tensor:
        if self.is_sdxl:
            hidden, pooled = conditioning["encoder_hidden_states"], conditioning["text_embeds"]
            time_ids = conditioning.get("time_ids")  # each image's (the loop's); else the latents' size, no crop
            if time_ids is None:
                height, width = (side * self.vae_scale_factor for side in noisy.shape[-2:])
                time_ids = torch.tensor([[height, width, 0, 0, height, width]], device=self.device)
                time_ids = time_ids.expand(noisy.shape[0], 6)
            added = {"text_embeds": pooled.to(self.dtype), "time_ids": time_ids.to(self.device, self.dtype)}
        else:
            hidden, added = conditioning, None
        return self.unet(
            noisy.to(self.dtype),
            timesteps,
            encoder_hidden_states=hidden.to(self.dtype),
            added_cond_kwargs=added,
            return_dict=False,
        )[0]

    def fingerprint(self) -> str:
        return fingerprint_unet(self.unet)

    def enable_gradient_checkpointing(self) -> None:
        self.unet.enable_gradient_checkpointing()

    # ------------------------------------------------------------------ PreviewRenderer
    def render_previews(self, prompts: list[str], *, seed: int, resolution: int, num_inference_steps: int) -> list:
        """Render with the pipeline (adapter active); decoding in fp32, as the VAE is kept in fp32."""
        vae = self.pipeline.vae
        generator = torch.Generator().manual_seed(seed)
        bar_config = getattr(self.pipeline, "_progress_bar_config", None)
        self.pipeline.set_progress_bar_config(disable=True)  # the trainer's own bar is the one to watch
        try:
            latents = self.pipeline(
                prompt=list(prompts),
                height=resolution,
                width=resolution,
                num_inference_steps=num_inference_steps,
                generator=generator,
                output_type="latent",
            ).images
        finally:
            if bar_config is None:
                del self.pipeline._progress_bar_config
            else:
                self.pipeline._progress_bar_config = bar_config
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        with torch.autocast(self.device.type, enabled=False):
            images = vae.decode(latents.float() / vae.config.scaling_factor + shift, return_dict=False)[0]
        return self.pipeline.image_processor.postprocess(images.float(), output_type="pil")


def load_diffusers_backend(
    model: str | Path | Any,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    config_folder: str | Path | None = None,
) -> Any:
    """A backend from a pipeline object, a diffusers folder, a single-file checkpoint or a hub id (loading goes
    through `selma.models.pipelines.load_pipeline`): a `DiffusersBackend` for SD1.x/2.x/SDXL UNets, a
    `dit_backend.FlowMatchingBackend` for FLUX.1 and SD3/SD3.5."""
    if isinstance(model, (str, Path)):
        from ..models.pipelines import load_pipeline

        dtype_name = {torch.float16: "float16", torch.bfloat16: "bfloat16"}.get(dtype, "float32")
        device = torch.device(device)
        device_name = "cpu" if device.type == "cpu" else str(device)  # accelerate's multi-CPU device is "cpu:0"
        model = load_pipeline(model, device=device_name, dtype=dtype_name, config_folder=config_folder)
    from .dit_backend import FlowMatchingBackend, pipeline_family

    if pipeline_family(model) is not None:  # FLUX.1 / SD3: the flow-matching objective on the transformer
        return FlowMatchingBackend(model, device=device, dtype=dtype)
    return DiffusersBackend(model, device=device, dtype=dtype)
