"""The trainer's denoiser backend over what a ComfyUI user has loaded: MODEL (ModelPatcher), CLIP, VAE.

Everything comes from the model itself — the noise schedule (`model_sampling.sigmas`, so eps and v
prediction both work), CLIP's own tokenizer and encoder, the VAE and the latent format — so SD1.x, SD2.x
and SDXL train the same way. The adapter goes into `model.diffusion_model` (LDM module names); the
expert is saved with diffusers names (selma.models.unet_names), so it loads everywhere.

ComfyUI runs nodes under `torch.inference_mode()`; training needs autograd, so the node calls the
trainer inside `torch.inference_mode(False)` and `prepare()` swaps any inference-mode weights for normal
copies (autograd cannot save inference tensors for backward).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from ...selma.experts.lora_expert import LoraExpert
from ...selma.experts.lora_files import fingerprint_unet, lora_expert_from_peft
from ...selma.models.unet_names import UnetLayout, ldm_to_diffusers
from ...selma.training.noise_schedule import add_noise, prediction_target


class ComfyBackend:
    """A `selma.training.backend.DenoiserBackend` over a ComfyUI ModelPatcher + CLIP + VAE."""

    def __init__(self, model_patcher: Any, clip: Any, vae: Any, resolution: int) -> None:
        import comfy.model_base
        import comfy.model_management
        import comfy.model_sampling

        self.patcher = model_patcher
        self.base_model = model_patcher.model
        self.module = self.base_model.diffusion_model
        self.clip, self.vae, self.resolution = clip, vae, resolution
        comfy.model_management.load_models_gpu([model_patcher], force_full_load=True)
        self.device = model_patcher.load_device
        sampling = self.base_model.model_sampling
        if isinstance(sampling, comfy.model_sampling.V_PREDICTION):
            self.prediction_type = "v_prediction"
        elif isinstance(sampling, comfy.model_sampling.EPS) and hasattr(sampling, "sigmas"):
            self.prediction_type = "epsilon"
        else:
            raise ValueError(
                f"{type(self.base_model).__name__} uses {type(sampling).__name__} sampling; SELMA experts train on "
                "discrete-time eps or v-prediction models (SD1.x, SD2.x, SDXL)"
            )
        sigmas = sampling.sigmas.to(self.device, torch.float32)
        self._alphas_cumprod = 1.0 / (sigmas**2 + 1.0)
        self.unet_config = dict(self.base_model.model_config.unet_config)
        self.wants_time_ids = isinstance(self.base_model, comfy.model_base.SDXL)  # each image's size and crop
        self._layout = UnetLayout.from_config(self.unet_config)  # fails early on a UNet we cannot name
        self._restore: list[tuple[torch.nn.Module, Any]] = []

    # -- the protocol ---------------------------------------------------------------------------------

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        images = ((pixels.float() + 1.0) / 2.0).clamp(0, 1).movedim(1, -1)  # [B,3,H,W] -1..1 -> [B,H,W,3] 0..1
        latents = self.vae.encode(images[..., :3])
        return self.base_model.process_latent_in(latents).to(self.device, torch.float32)

    def encode_prompts(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        contexts, extras, pooled_outputs = [], [], []
        for text in prompts:
            cond, pooled = self.clip.encode_from_tokens(self.clip.tokenize(text), return_pooled=True)
            contexts.append(cond)
            pooled_outputs.append(pooled)
            if self.wants_time_ids:
                continue  # SDXL's adm depends on the image too: made in `predict`
            size = self.resolution
            adm = self.base_model.encode_adm(pooled_output=pooled, width=size, height=size, device=self.device)
            if adm is not None:
                extras.append(adm)
        conditioning = {"context": torch.cat(contexts).to(self.device, torch.float32)}
        if self.wants_time_ids:  # SDXL: the size embedding is made per image in `predict`
            conditioning["pooled"] = torch.cat(pooled_outputs).to(self.device, torch.float32)
        elif extras:
            conditioning["y"] = torch.cat(extras).to(self.device, torch.float32)
        return conditioning

    def _sdxl_adm(self, pooled: torch.Tensor, time_ids: torch.Tensor) -> torch.Tensor:
        """SDXL's added conditioning of each example: its pooled text embedding and its own size and crop."""
        rows = []
        for k, (height, width, top, left, target_h, target_w) in enumerate(time_ids.tolist()):
            rows.append(
                self.base_model.encode_adm(
                    pooled_output=pooled[k : k + 1],
                    width=width,
                    height=height,
                    crop_w=left,
                    crop_h=top,
                    target_width=target_w,
                    target_height=target_h,
                    device=self.device,
                )  # fmt: skip
            )
        return torch.cat(rows).to(self.device, torch.float32)

    def sample_timesteps(self, n: int, generator: torch.Generator) -> torch.Tensor:
        steps = len(self._alphas_cumprod)
        return torch.randint(0, steps, (n,), generator=generator).to(self.device)

    def add_noise(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return add_noise(self._alphas_cumprod, latents, noise, timesteps)

    def target(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return prediction_target(self.prediction_type, self._alphas_cumprod, latents, noise, timesteps)

    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, conditioning: Any) -> torch.Tensor:
        dtype = self.base_model.manual_cast_dtype or self.base_model.get_dtype()
        kwargs = {"context": conditioning["context"].to(dtype)}
        if "pooled" in conditioning:
            time_ids = conditioning.get("time_ids")
            if time_ids is None:  # not from the loop: the latents' size, no crop
                scale = self.vae.downscale_ratio if isinstance(self.vae.downscale_ratio, int) else 8
                height, width = (side * scale for side in noisy.shape[-2:])
                time_ids = torch.tensor([[height, width, 0, 0, height, width]]).expand(noisy.shape[0], 6)
            kwargs["y"] = self._sdxl_adm(conditioning["pooled"], time_ids).to(dtype)
        elif "y" in conditioning:
            kwargs["y"] = conditioning["y"].to(dtype)
        out = self.module(noisy.to(dtype), timesteps.float(), transformer_options={}, **kwargs)
        return out.float()

    def fingerprint(self) -> str:
        return f"comfy:{fingerprint_unet(self.module)}"

    def enable_gradient_checkpointing(self) -> None:
        """Checkpoint each top-level UNet block (ComfyUI's UNet has no switch of its own)."""
        self._checkpoint_blocks([*self.module.input_blocks, self.module.middle_block, *self.module.output_blocks])

    def _checkpoint_blocks(self, blocks: list[torch.nn.Module]) -> None:
        from torch.utils.checkpoint import checkpoint

        for block in blocks:
            original = block.forward

            def forward(*args, _original=original, **kwargs):
                return checkpoint(_original, *args, use_reentrant=False, **kwargs)

            self._restore.append((block, block.__dict__.get("forward")))
            block.forward = forward

    # -- ComfyUI specifics ----------------------------------------------------------------------------

    def diffusers_name(self, ldm_name: str) -> str:
        """The diffusers name of a module of `diffusion_model` (experts are saved with these)."""
        return ldm_to_diffusers(ldm_name, self._layout)

    def export_expert(self, adapter_name: str) -> LoraExpert:
        """The trained adapter as an expert with diffusers module names (the loop saves it)."""
        expert = lora_expert_from_peft(self.module, adapter_name)
        return LoraExpert({self.diffusers_name(n): m for n, m in expert.modules.items()}, expert.metadata)

    def export_style_inject(self, adapter_name: str) -> dict[str, torch.Tensor]:
        """The trained StyleInject adapter's tensors keyed `<diffusers module name>.<part>` (the loop saves them)."""
        from ...selma.experts.style_inject_files import split_key
        from ...selma.tuners.style_inject import style_inject_state_dict

        tensors = {}
        for key, tensor in style_inject_state_dict(self.module, adapter_name).items():
            name, part = split_key(key)
            tensors[f"{self.diffusers_name(name)}.{part}"] = tensor.detach().to("cpu", copy=True)
        return tensors

    def prepare(self) -> None:
        """Make the frozen weights usable by autograd (see the module docstring)."""
        with torch.inference_mode(False):
            for module in self.module.modules():
                for name, param in list(module.named_parameters(recurse=False)):
                    if param.is_inference():
                        setattr(module, name, torch.nn.Parameter(param.detach().clone(), requires_grad=False))

    def close(self) -> None:
        for block, forward in reversed(self._restore):
            if forward is None:
                with contextlib.suppress(AttributeError):
                    del block.forward
            else:
                block.forward = forward
        self._restore.clear()
