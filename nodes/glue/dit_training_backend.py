"""The trainer's denoiser backend over a ComfyUI DiT MODEL — FLUX.1 (`comfy.model_base.Flux`) or SD3 / SD3.5
(`comfy.model_base.SD3`) — with its CLIP and VAE.

The objective is the headless one (`selma.training.flow_matching`, as diffusers' LoRA scripts compute it):
logit-normal timesteps over the training grid (FLUX.1-dev's unshifted one; SD3's shifted by the model's own shift),
x_t = (1 - s) x0 + s n, velocity target, and the guidance input of a guidance-distilled FLUX. Text goes through
the user's CLIP as ComfyUI encodes it for the model (T5 hidden states, CLIP pooled); ComfyUI packs the latents.

ComfyUI fuses what diffusers keeps apart (q, k and v in one `qkv`; in FLUX's single blocks q, k, v and the MLP
input in `linear1`), so the adapter goes on the fused modules that hold the targets the config names in diffusers
terms (`to_q` -> `double_blocks.N.img_attn.qkv` and `single_blocks.N.linear1`, or SD3's
`joint_blocks.N.x_block.attn.qkv`, ...), and the trained expert is handed back over diffusers names, each fused
LoRA split exactly into its parts (they share the down factor; each part takes its rows of the up factor) with
ComfyUI's own name maps (`comfy.utils.flux_to_diffusers`, `mmdit_to_diffusers`). So the file is the one headless
training writes, and stock LoraLoader and diffusers load it. Adapting one of q/k/v adapts all three there, and
FLUX's single blocks' MLP input with them.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ...selma.experts.lora_expert import LoraExpert, LoraModule
from ...selma.experts.lora_files import fingerprint_unet, lora_expert_from_peft
from ...selma.training.flow_matching import FlowMatchingObjective, FlowTimesteps, scheduler_timesteps
from .training_backend import ComfyBackend

GRID = {"num_train_timesteps": 1000, "use_dynamic_shifting": True}  # FLUX.1-dev's: trained unshifted


class ComfyDiTBackend(FlowMatchingObjective, ComfyBackend):
    """A `DenoiserBackend` over a ComfyUI DiT MODEL + CLIP + VAE (the UNet parts of ComfyBackend are replaced);
    FLUX and SD3 fill in their name map, training grid, blocks and transformer call."""

    family = ""

    def __init__(self, model_patcher: Any, clip: Any, vae: Any, resolution: int) -> None:
        import comfy.model_management

        self.patcher = model_patcher
        self.base_model = model_patcher.model
        self.module = self.base_model.diffusion_model
        self.clip, self.vae, self.resolution = clip, vae, resolution
        comfy.model_management.load_models_gpu([model_patcher], force_full_load=True)
        self.device = model_patcher.load_device
        self.unet_config = dict(self.base_model.model_config.unet_config)
        self.draw = FlowTimesteps()
        grid = self.training_grid()
        self.num_train_timesteps = grid["num_train_timesteps"]
        self._grid = scheduler_timesteps(grid)
        # diffusers weight key -> ComfyUI's (a fused weight: (key, (dim, offset, rows)))
        self._names = self.name_map()
        self._restore: list[tuple[torch.nn.Module, Any]] = []

    def training_grid(self) -> dict:
        """The FlowMatchEulerDiscreteScheduler config whose timesteps training draws from."""
        raise NotImplementedError

    def name_map(self) -> dict:
        raise NotImplementedError

    def blocks(self) -> list[torch.nn.Module]:
        raise NotImplementedError

    # -- the protocol ---------------------------------------------------------------------------------

    def encode_prompts(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        contexts, pooled = [], []
        for text in prompts:
            cond, pool = self.clip.encode_from_tokens(self.clip.tokenize(text), return_pooled=True)
            contexts.append(cond)
            pooled.append(pool)
        return {"context": _same_length(contexts).to(self.device, torch.float32), "y": torch.cat(pooled).float()}

    def fingerprint(self) -> str:
        return f"comfy:{fingerprint_unet(self.module)}"

    def enable_gradient_checkpointing(self) -> None:
        self._checkpoint_blocks(self.blocks())

    def prepare(self) -> None:
        """As for the UNet, and: ComfyUI's FLUX blocks add their output into their input in place (`x += ...`,
        fine for sampling), which autograd refuses where it saved that input; each block gets copies instead."""
        super().prepare()
        for block in self.blocks():
            original = block.forward

            def forward(*args, _original=original, **kwargs):
                args = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
                return _original(
                    *args, **{k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
                )

            self._restore.append((block, block.__dict__.get("forward")))
            block.forward = forward

    # -- names ----------------------------------------------------------------------------------------

    def adapter_targets(self, targets: tuple[str, ...]) -> tuple[str, ...]:
        """The modules of ComfyUI's FLUX that hold the diffusers-named `targets` (PEFT's suffix rule)."""
        found, missing = [], []
        present = dict(self.module.named_modules())  # the maps also name SD3.5's attn2, which SD3 has not
        for target in targets:
            hits = [
                _module(fused if isinstance(fused, str) else fused[0])
                for name, fused in self._names.items()
                if name.endswith(".weight") and (_module(name) == target or _module(name).endswith("." + target))
            ]
            hits = [hit for hit in hits if hit in present]
            if not hits:
                missing.append(target)
            found += hits
        if missing:
            raise ValueError(
                f"target_modules {missing} match no module of this {self.family.upper()} transformer (diffusers "
                "names, e.g. to_q, to_k, to_v, to_out.0, add_q_proj, to_add_out, ff.net.0.proj, proj_mlp, proj_out)"
            )
        return tuple(dict.fromkeys(found))

    def export_expert(self, adapter_name: str) -> LoraExpert:
        """The trained adapter over diffusers names, each fused module's LoRA split into its parts."""
        trained = lora_expert_from_peft(self.module, adapter_name)
        modules: dict[str, LoraModule] = {}
        for name, fused in self._names.items():
            if not name.endswith(".weight"):
                continue
            key, rows = (fused, None) if isinstance(fused, str) else fused[:2]
            source = trained.modules.get(_module(key))
            if source is None:
                continue
            if not isinstance(fused, str) and (len(fused) > 2 or (rows is not None and rows[0] != 0)):
                raise ValueError(f"{name} is a transformed part of {key}; a LoRA there cannot be split exactly")
            up = source.up if rows is None else source.up[rows[1] : rows[1] + rows[2]]
            modules[_module(name)] = LoraModule(down=source.down.clone(), up=up.clone(), alpha=source.alpha)
        return LoraExpert(modules, trained.metadata)

    def export_style_inject(self, adapter_name: str) -> dict[str, torch.Tensor]:
        raise ValueError("StyleInject on FLUX / SD3 is not supported in ComfyUI yet; train a LoRA (method 'lora')")


class ComfyFluxBackend(ComfyDiTBackend):
    """FLUX.1: trained on FLUX.1-dev's unshifted grid; the transformer takes sigma and (dev) the guidance."""

    family = "flux"

    def __init__(self, model_patcher: Any, clip: Any, vae: Any, resolution: int, guidance: float = 3.5) -> None:
        super().__init__(model_patcher, clip, vae, resolution)
        self.guidance = float(guidance) if self.unet_config.get("guidance_embed") else None

    def training_grid(self) -> dict:
        return dict(GRID)

    def name_map(self) -> dict:
        import comfy.utils

        return comfy.utils.flux_to_diffusers(self.unet_config, output_prefix="")

    def blocks(self) -> list[torch.nn.Module]:
        return [*self.module.double_blocks, *self.module.single_blocks]

    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, conditioning: Any) -> torch.Tensor:
        dtype = self.base_model.manual_cast_dtype or self.base_model.get_dtype()
        sigmas = timesteps.float() / self.num_train_timesteps  # ComfyUI's FLUX takes sigma as its timestep
        guidance = None
        if self.guidance is not None:
            guidance = torch.full((noisy.shape[0],), self.guidance, device=self.device, dtype=torch.float32)
        out = self.module(
            noisy.to(dtype),
            sigmas,
            conditioning["context"].to(self.device, dtype),
            y=conditioning["y"].to(self.device, dtype),
            guidance=guidance,
            transformer_options={},
        )
        return out.float()


class ComfySD3Backend(ComfyDiTBackend):
    """SD3 / SD3.5: trained on the grid shifted as the model samples (3.0); the MMDiT takes t in [0, 1000]."""

    family = "sd3"

    def training_grid(self) -> dict:
        return {"num_train_timesteps": 1000, "shift": float(self.base_model.model_sampling.shift)}

    def name_map(self) -> dict:
        import comfy.utils

        return comfy.utils.mmdit_to_diffusers(self.unet_config, output_prefix="")

    def blocks(self) -> list[torch.nn.Module]:
        return list(self.module.joint_blocks)

    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, conditioning: Any) -> torch.Tensor:
        dtype = self.base_model.manual_cast_dtype or self.base_model.get_dtype()
        out = self.module(
            noisy.to(dtype),
            timesteps.float(),
            context=conditioning["context"].to(self.device, dtype),
            y=conditioning["y"].to(self.device, dtype),
            transformer_options={},
        )
        return out.float()


def _module(key: str) -> str:
    return key.removesuffix(".weight").removesuffix(".bias")


def _same_length(contexts: list[torch.Tensor]) -> torch.Tensor:
    """One batch of T5 contexts of different lengths, each repeated to their least common multiple — what
    ComfyUI does when it batches conditionings (comfy.conds.CONDCrossAttn.concat)."""
    lengths = {c.shape[1] for c in contexts}
    if len(lengths) == 1:
        return torch.cat(contexts)
    total = math.lcm(*lengths)
    return torch.cat([c.repeat(1, total // c.shape[1], 1) for c in contexts])


def comfy_training_backend(model_patcher: Any, clip: Any, vae: Any, resolution: int) -> ComfyBackend:
    """The backend for the MODEL a user connected: FLUX.1 or SD3 (flow matching), or an SD-family UNet (eps / v)."""
    import comfy.model_base

    if isinstance(model_patcher.model, comfy.model_base.Flux):
        return ComfyFluxBackend(model_patcher, clip, vae, resolution)
    if isinstance(model_patcher.model, comfy.model_base.SD3):
        return ComfySD3Backend(model_patcher, clip, vae, resolution)
    return ComfyBackend(model_patcher, clip, vae, resolution)
