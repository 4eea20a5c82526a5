"""The rectified-flow objective SD3 and FLUX are trained with, as diffusers' training scripts compute it.

Noise level sigma in [0, 1]: x_t = (1 - sigma) x_0 + sigma * noise, and the model predicts the velocity
noise - x_0. A timestep is sigma * num_train_timesteps (what the transformers take, FLUX divided by 1000).
Training timesteps are drawn like `train_dreambooth_lora_{sd3,flux}.py`: u from the weighting scheme
(`diffusers.training_utils.compute_density_for_timestep_sampling`: logit-normal, "mode" or uniform), then
the scheduler's own timestep at index floor(u * N) — so a scheduler with a static shift (SD3: 3.0) shifts
the draw, and one with dynamic shifting (FLUX.1-dev) does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

WEIGHTING_SCHEMES = ("logit_normal", "mode", "uniform")


@dataclass(frozen=True)
class FlowTimesteps:
    """How training timesteps are drawn (diffusers' defaults: logit-normal, mean 0, std 1, mode scale 1.29)."""

    weighting_scheme: str = "logit_normal"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    mode_scale: float = 1.29

    def __post_init__(self) -> None:
        if self.weighting_scheme not in WEIGHTING_SCHEMES:
            raise ValueError(f"weighting_scheme={self.weighting_scheme!r}; choose one of {WEIGHTING_SCHEMES}")
        if not self.logit_std > 0:
            raise ValueError(f"logit_std={self.logit_std!r} must be > 0")

    def density(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """`n` draws of u in [0, 1] (on the CPU, from `generator`)."""
        if self.weighting_scheme == "logit_normal":
            u = torch.normal(self.logit_mean, self.logit_std, size=(n,), generator=generator)
            return torch.sigmoid(u)
        u = torch.rand(n, generator=generator)
        if self.weighting_scheme == "mode":
            u = 1 - u - self.mode_scale * (torch.cos(math.pi * u / 2) ** 2 - 1 + u)
        return u


def scheduler_timesteps(scheduler_config: dict) -> torch.Tensor:
    """The training timesteps a FlowMatchEulerDiscreteScheduler with this config starts with (descending)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler.from_config(scheduler_config).timesteps.float()


def sample_flow_timesteps(
    grid: torch.Tensor, n: int, generator: torch.Generator, draw: FlowTimesteps = FlowTimesteps()
) -> torch.Tensor:
    """`n` timesteps from the scheduler's `grid` (`scheduler_timesteps`), the index drawn by `draw`."""
    u = draw.density(n, generator)
    indices = (u * len(grid)).long().clamp_(0, len(grid) - 1)
    return grid[indices]


def sigmas_of(timesteps: torch.Tensor, num_train_timesteps: int, ndim: int) -> torch.Tensor:
    """Noise levels of `timesteps`, shaped to broadcast over a latent batch of `ndim` dimensions."""
    sigmas = timesteps.float() / num_train_timesteps
    return sigmas.reshape(-1, *([1] * (ndim - 1)))


def flow_noisy(latents: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    return (1.0 - sigmas) * latents + sigmas * noise


def flow_target(latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The velocity the model should predict."""
    return noise - latents


class FlowMatchingObjective:
    """The objective's part of a `DenoiserBackend` (`sample_timesteps`, `add_noise`, `target`), shared by the
    headless DiT backend and ComfyUI's FLUX one; the backend sets `device`, `draw` (FlowTimesteps), `_grid`
    (`scheduler_timesteps`) and `num_train_timesteps`."""

    device: torch.device
    draw: FlowTimesteps
    num_train_timesteps: int
    _grid: torch.Tensor

    def sample_timesteps(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return sample_flow_timesteps(self._grid, n, generator, self.draw).to(self.device)

    def add_noise(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return flow_noisy(latents, noise, sigmas_of(timesteps, self.num_train_timesteps, latents.ndim))

    def target(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return flow_target(latents, noise)
