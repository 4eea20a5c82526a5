"""The denoiser backend: everything the training loop needs from a model, and nothing more.

The loop (`loop.train_expert`) never touches a pipeline, a noise scheduler or a text encoder directly;
it calls a backend. `DiffusersBackend` (diffusers_backend.py) is the headless one; the ComfyUI node
implements the same protocol over a ModelPatcher, its CLIP and its VAE.

Conditioning is whatever `encode_prompts` returns — a tensor (SD1.x/2.x), a dict of tensors (SDXL:
hidden states + pooled embeddings), or any nesting of dicts, lists and tuples of tensors whose first
dimension is the batch. The loop only selects, concatenates and moves it with the helpers below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from ..experts.lora_expert import LoraExpert


@runtime_checkable
class DenoiserBackend(Protocol):
    """A text-to-image denoiser the trainer can put adapters into and compute the training loss with."""

    module: torch.nn.Module
    """The module adapters are injected into (the UNet); the trainer freezes it, adds the adapter, and
    removes the adapter again when it is done."""

    device: torch.device
    """Where `encode_*`, `add_noise`, `target` and `predict` take and return their tensors."""

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, H, W] in [-1, 1] -> fp32 latents [B, C, h, w], already scaled for the denoiser.
        Must be deterministic (the posterior mean, not a sample), so cached and uncached training agree."""
        ...

    def encode_prompts(self, prompts: list[str]) -> Any:
        """Captions -> conditioning (batched along dim 0; see the module docstring)."""
        ...

    def sample_timesteps(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """`n` training timesteps drawn with `generator` (a CPU generator), on `device`."""
        ...

    def add_noise(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """The noisy latents the model sees at `timesteps`, from the model's own noise schedule."""
        ...

    def target(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """What `predict` should output: the noise (eps-prediction) or the velocity (v-prediction)."""
        ...

    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, conditioning: Any) -> torch.Tensor:
        """The model's output for a noisy batch (the trainer calls it under autocast, with grad)."""
        ...

    def fingerprint(self) -> str:
        """The base model's architecture identity (`expert_files.fingerprint_unet`), written into the expert
        and its checkpoints; a checkpoint only resumes on a model with the same fingerprint."""
        ...

    def enable_gradient_checkpointing(self) -> None:
        """Recompute activations in the backward pass (less memory, about 30% more time)."""
        ...


@runtime_checkable
class PreviewRenderer(Protocol):
    """Optional: a backend that can render images with the adapter being trained (for previews)."""

    def render_previews(
        self, prompts: list[str], *, seed: int, resolution: int, num_inference_steps: int
    ) -> list[Image.Image]: ...


@runtime_checkable
class ExpertExporter(Protocol):
    """Optional: a backend whose `module` does not use diffusers UNet names (ComfyUI's LDM-named
    diffusion_model) hands the trained adapter back itself, over diffusers names. Without this method the
    trainer reads it with `expert_files.lora_expert_from_peft(backend.module, adapter_name)`."""

    def export_expert(self, adapter_name: str) -> LoraExpert: ...


@runtime_checkable
class StyleInjectExporter(Protocol):
    """Optional, the same for StyleInject: the trained adapter's tensors keyed `<diffusers module name>.<part>` (the
    keys of `style_inject_files`). Without it the trainer reads `style_inject_state_dict(backend.module, ...)`."""

    def export_style_inject(self, adapter_name: str) -> dict[str, torch.Tensor]: ...


def map_conditioning(conditioning: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    """Apply `fn` to every tensor in a conditioning tree (dicts, lists, tuples; anything else is kept)."""
    import torch

    if isinstance(conditioning, torch.Tensor):
        return fn(conditioning)
    if isinstance(conditioning, dict):
        return {k: map_conditioning(v, fn) for k, v in conditioning.items()}
    if isinstance(conditioning, (list, tuple)):
        return type(conditioning)(map_conditioning(v, fn) for v in conditioning)
    return conditioning


def select_conditioning(conditioning: Any, index: torch.Tensor | Sequence[int]) -> Any:
    """Rows `index` (along dim 0) of every tensor in a conditioning tree."""
    import torch

    def take(tensor: torch.Tensor) -> torch.Tensor:
        return tensor[torch.as_tensor(index, dtype=torch.long, device=tensor.device)]

    return map_conditioning(conditioning, take)


def concat_conditioning(parts: Sequence[Any]) -> Any:
    """Concatenate conditioning trees of the same structure along dim 0."""
    import torch

    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(list(parts))
    if isinstance(first, dict):
        return {k: concat_conditioning([p[k] for p in parts]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(concat_conditioning([p[i] for p in parts]) for i in range(len(first)))
    return first
