"""The headless denoiser backend for the DiT families: a diffusers FluxPipeline (FLUX.1) or StableDiffusion3Pipeline.

Both are trained with the rectified-flow objective (flow_matching.py) as diffusers' own LoRA scripts train them:
timesteps drawn logit-normal from the pipeline's FlowMatchEulerDiscreteScheduler grid, x_t = (1 - s) x0 + s n,
velocity target n - x0. FLUX latents are packed into 2x2 patch tokens (with their position ids) for the
transformer and unpacked from it, and a guidance-distilled FLUX (dev) gets its guidance input (3.5, the default
of diffusers' FLUX LoRA script); SD3 takes the
latents as they are plus the pooled CLIP embeddings. Text goes through the pipeline's own `encode_prompt` (CLIP
and T5), so training sees what sampling sees; the trainer caches the embeddings once, and `offload_text_encoders`
then moves the encoders off the GPU (T5-XXL alone is ~9.5 GB in bf16). The VAE stays fp32 and encodes
deterministically.
"""

from __future__ import annotations

from typing import Any

import torch

from ..experts.lora_files import fingerprint_unet
from .flow_matching import FlowMatchingObjective, FlowTimesteps, scheduler_timesteps

FAMILIES = {"FluxPipeline": "flux", "StableDiffusion3Pipeline": "sd3"}
_TEXT_ENCODERS = ("text_encoder", "text_encoder_2", "text_encoder_3")


def pipeline_family(pipeline: Any) -> str | None:
    """'flux' or 'sd3' for the pipelines this backend trains (subclasses included), None for any other."""
    for cls in type(pipeline).__mro__:
        if cls.__name__ in FAMILIES:
            return FAMILIES[cls.__name__]
    return None


class FlowMatchingBackend(FlowMatchingObjective):
    """A `DenoiserBackend` (and `PreviewRenderer`) over a FluxPipeline or a StableDiffusion3Pipeline."""

    def __init__(
        self,
        pipeline: Any,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        timesteps: FlowTimesteps = FlowTimesteps(),
        guidance: float = 3.5,
        max_sequence_length: int | None = None,
        keep_text_encoders: bool = False,
    ) -> None:
        self.family = pipeline_family(pipeline)
        if self.family is None or getattr(pipeline, "transformer", None) is None or pipeline.vae is None:
            raise ValueError(
                f"{type(pipeline).__name__} is not a FLUX.1 or SD3 pipeline with a transformer and a VAE; "
                "FlowMatchingBackend trains FluxPipeline and StableDiffusion3Pipeline (UNet models: DiffusersBackend)"
            )
        self.pipeline = pipeline
        self.transformer = pipeline.transformer
        self.module = self.transformer
        self.device = torch.device(device) if device is not None else self.transformer.device
        self.dtype = dtype or self.transformer.dtype
        self.draw = timesteps
        self.guidance = float(guidance)
        self.keep_text_encoders = keep_text_encoders
        self.max_sequence_length = max_sequence_length or (512 if self.family == "flux" else 256)
        torch.nn.Module.to(self.transformer, device=self.device, dtype=self.dtype)
        torch.nn.Module.to(pipeline.vae, device=self.device, dtype=torch.float32)
        pipeline.vae.requires_grad_(False)
        for name in _TEXT_ENCODERS:
            encoder = getattr(pipeline, name, None)
            if encoder is not None:
                encoder.to(device=self.device, dtype=self.dtype)
                encoder.requires_grad_(False)
        self.num_train_timesteps = int(pipeline.scheduler.config.num_train_timesteps)
        self._grid = scheduler_timesteps(dict(pipeline.scheduler.config))
        self.vae_scale_factor = 2 ** (len(pipeline.vae.config.block_out_channels) - 1)

    # ------------------------------------------------------------------ DenoiserBackend
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        vae = self.pipeline.vae
        latents = vae.encode(pixels.to(self.device, torch.float32)).latent_dist.mode()
        shift = getattr(vae.config, "shift_factor", None) or 0.0
        return ((latents - shift) * vae.config.scaling_factor).float()

    def encode_prompts(self, prompts: list[str]) -> Any:
        for name in self._encoder_names():  # back from offload_text_encoders, if they were moved
            encoder = getattr(self.pipeline, name, None)
            if encoder is not None and encoder.device != self.device:
                encoder.to(self.device)
        prompts = list(prompts)
        with torch.no_grad():
            if self.family == "flux":
                embeds, pooled, _ = self.pipeline.encode_prompt(
                    prompt=prompts, prompt_2=None, device=self.device, max_sequence_length=self.max_sequence_length
                )
            else:
                embeds, _, pooled, _ = self.pipeline.encode_prompt(
                    prompt=prompts,
                    prompt_2=None,
                    prompt_3=None,
                    device=self.device,
                    do_classifier_free_guidance=False,
                    max_sequence_length=self.max_sequence_length,
                )
        return {"encoder_hidden_states": embeds.float(), "pooled_projections": pooled.float()}

    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, conditioning: Any) -> torch.Tensor:
        hidden = conditioning["encoder_hidden_states"].to(self.dtype)
        pooled = conditioning["pooled_projections"].to(self.dtype)
        if self.family == "sd3":
            return self.transformer(
                hidden_states=noisy.to(self.dtype),
                timestep=timesteps,
                encoder_hidden_states=hidden,
                pooled_projections=pooled,
                return_dict=False,
            )[0]
        batch, channels, height, width = noisy.shape
        packed = self.pipeline._pack_latents(noisy.to(self.dtype), batch, channels, height, width)
        image_ids = self.pipeline._prepare_latent_image_ids(batch, height // 2, width // 2, self.device, self.dtype)
        text_ids = torch.zeros(hidden.shape[1], 3, device=self.device, dtype=self.dtype)
        guidance = None
        if self.transformer.config.guidance_embeds:
            guidance = torch.full((batch,), self.guidance, device=self.device, dtype=torch.float32)
        output = self.transformer(
            hidden_states=packed,
            timestep=timesteps / self.num_train_timesteps,
            guidance=guidance,
            pooled_projections=pooled,
            encoder_hidden_states=hidden,
            txt_ids=text_ids,
            img_ids=image_ids,
            return_dict=False,
        )[0]
        pixels = (height * self.vae_scale_factor, width * self.vae_scale_factor)
        return self.pipeline._unpack_latents(output, *pixels, self.vae_scale_factor)

    def fingerprint(self) -> str:
        return fingerprint_unet(self.transformer)

    def enable_gradient_checkpointing(self) -> None:
        self.transformer.enable_gradient_checkpointing()

    def offload_text_encoders(self) -> None:
        """Move the text encoders to the CPU (the trainer calls this once every caption's embeddings are cached):
        on a GPU the memory T5 holds (~9.5 GB in bf16 for T5-XXL) is then the transformer's. `encode_prompts`
        brings them back when it is called again (the next skill of a run); on the CPU this changes nothing."""
        if self.keep_text_encoders or self.device.type == "cpu":
            return
        for name in self._encoder_names():
            encoder = getattr(self.pipeline, name, None)
            if encoder is not None:
                encoder.to("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _encoder_names(self) -> tuple[str, ...]:
        return _TEXT_ENCODERS[:2] if self.family == "flux" else _TEXT_ENCODERS

    # ------------------------------------------------------------------ PreviewRenderer
    def render_previews(self, prompts: list[str], *, seed: int, resolution: int, num_inference_steps: int) -> list:
        generator = torch.Generator().manual_seed(seed)
        self.pipeline.set_progress_bar_config(disable=True)
        extra = {"guidance_scale": self.guidance} if self.family == "flux" else {}
        return self.pipeline(
            prompt=list(prompts),
            height=resolution,
            width=resolution,
            num_inference_steps=num_inference_steps,
            generator=generator,
            max_sequence_length=self.max_sequence_length,
            **extra,
        ).images
