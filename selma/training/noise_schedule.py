"""The DDPM forward process every discrete-time SD model trains with, from its cumulative alphas:
x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε, and the target for eps-, v- or sample-prediction models.
The diffusers backend and the ComfyUI backend read ᾱ from their own model's schedule and share this."""

from __future__ import annotations

import torch

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def _coefficients(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, ndim: int) -> tuple[torch.Tensor, ...]:
    alphas = alphas_cumprod[timesteps].float().reshape(-1, *([1] * (ndim - 1)))
    return alphas.sqrt(), (1 - alphas).sqrt()


def add_noise(alphas_cumprod: torch.Tensor, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor):
    """The noisy latents at `timesteps` (DDPMScheduler.add_noise's formula)."""
    signal, sigma = _coefficients(alphas_cumprod, timesteps, latents.ndim)
    return signal * latents + sigma * noise


def prediction_target(
    prediction_type: str,
    alphas_cumprod: torch.Tensor,
    latents: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
) -> torch.Tensor:
    """What the model should predict: ε, x_0, or v = sqrt(ᾱ) ε - sqrt(1 - ᾱ) x_0 (DDPMScheduler.get_velocity)."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "sample":
        return latents
    if prediction_type != "v_prediction":
        raise ValueError(f"prediction_type={prediction_type!r} is not trainable here; supported: {PREDICTION_TYPES}")
    signal, sigma = _coefficients(alphas_cumprod, timesteps, latents.ndim)
    return signal * noise - sigma * latents
