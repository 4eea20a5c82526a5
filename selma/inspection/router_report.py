"""Router inspection, headless: what a StyleInject adapter's routers choose while a diffusers pipeline samples.

    pipe.unet.add_adapter(...) / apply_style_inject_expert(pipe.unet, expert)
    report = inspect_router(pipe, ["a portrait", "a landscape"], steps=20, guidance=7.5, seed=0)
    report.probabilities.shape        # [prompts, steps, 2 (cond, uncond), layers, styles]
    report.save("router.json")        # selma.inspection.router_plots draws it: heatmap(report), embedding(report)

Every prompt starts from the same initial noise (one generator per prompt, all seeded with `seed`), so differences
between prompts come from the prompts. With classifier-free guidance diffusers runs the uncond and the cond half
in one batch (uncond first); the report keeps both, cond first. A "step" is one UNet call: one per denoising step
for the usual schedulers (Heun-type schedulers call the UNet twice); `timesteps` holds each call's timestep.
A stacked adapter (a merge of K experts) has K·n routes per layer, a softmax per group of n.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..atomic_files import write_text_atomic
from ..models.pipelines import denoiser_of

log = logging.getLogger(__name__)

BRANCHES = ("cond", "uncond")
REPORT_FORMAT = "selma-router-report/1"


@dataclass
class RouterReport:
    """Router probabilities recorded while sampling: `probabilities` [prompts, steps, branches, layers, routes]
    (float32), `branches` ("cond", "uncond") under classifier-free guidance or ("cond",) for a guidance-distilled
    model that samples without an unconditional pass (FLUX.1-dev); `routes` = num_experts · num_styles."""

    layers: list[str]
    timesteps: list[float]
    prompts: list[str]
    probabilities: torch.Tensor
    num_experts: int = 1
    settings: dict[str, Any] = field(default_factory=dict)
    branches: tuple[str, ...] = BRANCHES

    def __post_init__(self) -> None:
        self.probabilities = torch.as_tensor(self.probabilities, dtype=torch.float32)
        self.branches = tuple(self.branches)
        if self.branches not in (BRANCHES, BRANCHES[:1]):
            raise ValueError(f"branches={self.branches!r}: ('cond', 'uncond') or ('cond',)")
        expected = (len(self.prompts), len(self.timesteps), len(self.branches), len(self.layers))
        if self.probabilities.dim() != 5 or tuple(self.probabilities.shape[:4]) != expected:
            raise ValueError(
                f"probabilities have shape {tuple(self.probabilities.shape)}; expected [prompts, steps, branches, "
                f"layers, routes] = [{', '.join(map(str, expected))}, routes]"
            )
        routes = self.probabilities.shape[4]
        if self.num_experts < 1 or routes % self.num_experts:
            raise ValueError(f"{routes} routes per layer cannot be split into num_experts={self.num_experts} groups")

    @property
    def num_styles(self) -> int:
        """n: the styles of each (sub-)expert's router."""
        return self.probabilities.shape[4] // self.num_experts

    def branch(self, branch: str) -> int:
        """The index of 'cond' or 'uncond' along dimension 2."""
        if branch not in self.branches:
            raise ValueError(f"branch={branch!r} is not one of this report's {self.branches}")
        return self.branches.index(branch)

    def grouped(self) -> torch.Tensor:
        """The probabilities as [prompts, steps, 2, layers, num_experts, num_styles]: each last row sums to 1."""
        return self.probabilities.unflatten(-1, (self.num_experts, self.num_styles))

    def normalised_entropy(self) -> torch.Tensor:
        """Entropy of each router row over log(n): 0 = one style chosen, 1 = uniform. [P, S, 2, L, K]."""
        if self.num_styles == 1:
            return torch.zeros(self.grouped().shape[:-1])
        p = self.grouped().double()
        entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)
        return (entropy / math.log(self.num_styles)).float()

    def summary(self) -> dict[str, Any]:
        """Numbers to read at a glance (recomputed from the probabilities, never stored separately)."""
        grouped = self.grouped().double()
        entropy = self.normalised_entropy().double()
        cond = self.branch("cond")
        per_prompt = []
        for index, prompt in enumerate(self.prompts):
            entry: dict[str, Any] = {"prompt": prompt}
            for name in self.branches:
                b = self.branch(name)
                mean = self.probabilities[index, :, b].double().mean(dim=(0, 1))
                entry[name] = {
                    "mean_probabilities": mean.tolist(),
                    "dominant_route": int(mean.argmax()),
                    "mean_normalised_entropy": float(entropy[index, :, b].mean()),
                }
            if "uncond" in self.branches:  # total variation distance cond vs uncond, averaged over steps and layers
                uncond = self.branch("uncond")
                entry["cond_uncond_distance"] = float(
                    (grouped[index, :, cond] - grouped[index, :, uncond]).abs().sum(-1).mul(0.5).mean()
                )
            per_prompt.append(entry)
        return {
            "row_sum_max_error": float((grouped.sum(-1) - 1).abs().max()) if grouped.numel() else 0.0,
            "mean_normalised_entropy": float(entropy.mean()) if entropy.numel() else 0.0,
            "per_layer_mean_normalised_entropy_cond": entropy[:, :, cond].mean(dim=(0, 1, 3)).tolist(),
            "per_prompt": per_prompt,
        }

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data: the probabilities as nested lists [prompt][step][cond/uncond][layer][route] (exact:
        float32 values written as the doubles they are), the axes, the settings and `summary()`."""
        return {
            "format": REPORT_FORMAT,
            "branches": list(self.branches),
            "layers": list(self.layers),
            "timesteps": list(self.timesteps),
            "steps": len(self.timesteps),
            "prompts": list(self.prompts),
            "num_experts": self.num_experts,
            "num_styles": self.num_styles,
            "settings": dict(self.settings),
            "probabilities": self.probabilities.tolist(),
            "summary": self.summary(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RouterReport:
        """The report `to_json` wrote (the summary is recomputed, not read)."""
        if data.get("format") != REPORT_FORMAT:
            raise ValueError(f"not a router report (format {data.get('format')!r}, expected {REPORT_FORMAT!r})")
        probabilities = torch.tensor(data["probabilities"], dtype=torch.float32)
        if probabilities.numel() == 0:
            routes = int(data["num_experts"]) * int(data["num_styles"])
            branches = data.get("branches", BRANCHES)
            shape = (len(data["prompts"]), len(data["timesteps"]), len(branches), len(data["layers"]), routes)
            probabilities = probabilities.reshape(shape)
        return cls(
            layers=list(data["layers"]),
            timesteps=[float(t) for t in data["timesteps"]],
            prompts=list(data["prompts"]),
            probabilities=probabilities,
            num_experts=int(data["num_experts"]),
            settings=dict(data.get("settings", {})),
            branches=tuple(data.get("branches", BRANCHES)),
        )

    def save(self, path: str | Path) -> Path:
        """Write `to_json()` to `path`, atomically."""
        write_text_atomic(path, json.dumps(self.to_json()) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> RouterReport:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))


# --------------------------------------------------------------------------------------------------- recording


def _check_settings(prompts: Sequence[str], steps: int, guidance: float) -> list[str]:
    if isinstance(prompts, str) or not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise ValueError(f"prompts must be a non-empty list of non-empty strings, got {prompts!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1 (denoising steps), got {steps!r}")
    if isinstance(guidance, bool) or not isinstance(guidance, int | float) or not guidance > 1:
        raise ValueError(
            f"guidance must be a number > 1, got {guidance!r}: the router is recorded for the cond and the uncond "
            "half of classifier-free guidance, which runs only with guidance > 1 (7.5 is SD's usual value)"
        )
    return list(prompts)


def _timestep_of(args: tuple, kwargs: dict) -> float:
    t = args[1] if len(args) > 1 else kwargs.get("timestep", kwargs.get("t"))
    t = torch.as_tensor(t)
    return float(t.reshape(-1)[0]) if t.numel() else float("nan")


def _assemble(recorder, layers: list[str], prompts: int) -> tuple[torch.Tensor, tuple[str, ...]]:
    """[calls, 2P, routes] per layer -> [P, calls, 2 (cond, uncond), L, routes]; [calls, P, routes] (no
    classifier-free guidance: a guidance-distilled FLUX) -> [P, calls, 1 (cond), L, routes]. And the branches."""
    counts = {name: len(recorder.probs[name]) for name in layers}
    if len(set(counts.values())) != 1:
        raise RuntimeError(f"the StyleInject layers routed a different number of times ({counts}); please report")
    stacked = torch.stack([recorder.stacked(name) for name in layers], dim=2)  # [calls, batch, L, routes]
    calls, batch = stacked.shape[:2]
    if batch == prompts and batch != 2 * prompts:  # one pass per step, the prompts only
        return stacked.reshape(calls, 1, prompts, *stacked.shape[2:]).permute(2, 0, 1, 3, 4).contiguous(), ("cond",)
    if batch != 2 * prompts:
        raise RuntimeError(
            f"the UNet saw batches of {batch} for {prompts} prompt(s), not the 2 x {prompts} of classifier-free "
            "guidance; pass guidance > 1 and one image per prompt"
        )
    halves = stacked.reshape(calls, 2, prompts, *stacked.shape[2:])  # diffusers: uncond half first
    return halves.flip(1).permute(2, 0, 1, 3, 4).contiguous(), BRANCHES


def _sample_with_pipeline(
    pipe: Any, prompts: list[str], steps: int, guidance: float, seed: int, options: dict, on_step: Callable
) -> None:
    def callback(_pipe: Any, step: int, _timestep: Any, kwargs: dict) -> dict:
        on_step(step + 1)
        return {}

    bar_config = getattr(pipe, "_progress_bar_config", None)
    pipe.set_progress_bar_config(disable=True)  # the caller draws progress
    try:
        pipe(
            prompt=prompts,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=[torch.Generator().manual_seed(seed) for _ in prompts],
            output_type="latent",
            callback_on_step_end=callback,
            **options,
        )
    finally:
        if bar_config is None:
            del pipe._progress_bar_config
        else:
            pipe._progress_bar_config = bar_config


def _sample_with_unet(
    unet: torch.nn.Module,
    cond: torch.Tensor,
    uncond: torch.Tensor,
    steps: int,
    guidance: float,
    seed: int,
    scheduler: Any,
    on_step: Callable,
) -> None:
    """Classifier-free guided sampling with a bare SD-type UNet, batched as diffusers does (uncond first)."""
    from diffusers import DDIMScheduler

    if getattr(unet.config, "addition_embed_type", None) is not None:
        raise ValueError("this UNet needs added conditioning (SDXL-type); inspect it through its pipeline instead")
    if scheduler is None:  # SD1.x/2.x's training schedule with DDIM sampling
        scheduler = DDIMScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            clip_sample=False,
            set_alpha_to_one=False,
            steps_offset=1,
        )
    device, dtype = unet.device, unet.dtype
    size = unet.config.sample_size
    size = (size, size) if isinstance(size, int) else tuple(size)
    shape = (1, unet.config.in_channels, *size)
    latents = torch.cat([torch.randn(shape, generator=torch.Generator().manual_seed(seed)) for _ in range(len(cond))])
    latents = latents.to(device, dtype) * scheduler.init_noise_sigma
    text = torch.cat([uncond, cond]).to(device, dtype)
    scheduler.set_timesteps(steps, device=device)
    for index, t in enumerate(scheduler.timesteps):
        model_input = scheduler.scale_model_input(torch.cat([latents, latents]), t)
        noise_uncond, noise_cond = unet(model_input, t, encoder_hidden_states=text, return_dict=False)[0].chunk(2)
        noise = noise_uncond + guidance * (noise_cond - noise_uncond)
        latents = scheduler.step(noise, t, latents, return_dict=False)[0]
        on_step(index + 1)


def inspect_router(
    pipeline_or_unet: Any,
    prompts: Sequence[str],
    *,
    steps: int = 20,
    guidance: float = 7.5,
    seed: int = 0,
    adapter_name: str | None = None,
    negative_prompt: str | None = None,
    height: int | None = None,
    width: int | None = None,
    prompt_embeds: torch.Tensor | None = None,
    negative_prompt_embeds: torch.Tensor | None = None,
    scheduler: Any = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> RouterReport:
    """Sample `prompts` once with classifier-free guidance and record every StyleInject router, per layer, per
    UNet call (denoising step), for the cond and the uncond half, per prompt.

    `pipeline_or_unet`: a diffusers text-to-image pipeline whose UNet holds a StyleInject adapter (`height`,
    `width`, `negative_prompt` go to it), or such a bare SD-type UNet, then with `prompt_embeds` [P, T, D] and
    `negative_prompt_embeds` (one row, or one per prompt) and optionally a diffusers `scheduler` (default DDIM with
    SD's schedule); `prompts` then only label the report. `adapter_name` may be left out when one adapter routes.
    `on_progress(done, total)` after every step; raising from it (a Cancel) stops the sampling.
    """
    from ..tuners.style_inject import record_router, style_inject_layers

    prompts = _check_settings(prompts, steps, guidance)
    is_pipeline = callable(pipeline_or_unet) and any(hasattr(pipeline_or_unet, n) for n in ("unet", "transformer"))
    unet = denoiser_of(pipeline_or_unet) if is_pipeline else pipeline_or_unet  # FLUX / SD3: the transformer
    if not isinstance(unet, torch.nn.Module):
        raise TypeError(f"expected a diffusers pipeline or UNet, got {type(pipeline_or_unet).__name__}")
    if not is_pipeline and (prompt_embeds is None or negative_prompt_embeds is None):
        raise ValueError(
            "a bare UNet has no text encoder: pass prompt_embeds and negative_prompt_embeds, or pass the pipeline"
        )

    def on_step(done: int) -> None:
        if on_progress is not None:
            on_progress(done, steps)

    timesteps: list[float] = []
    hook = unet.register_forward_pre_hook(
        lambda _m, args, kwargs: timesteps.append(_timestep_of(args, kwargs)), with_kwargs=True
    )
    try:
        with record_router(unet, adapter_name, device="cpu") as recorder, torch.no_grad():
            if is_pipeline:
                options = {"negative_prompt": negative_prompt, "height": height, "width": width}
                options = {k: v for k, v in options.items() if v is not None}
                _sample_with_pipeline(pipeline_or_unet, prompts, steps, guidance, seed, options, on_step)
            else:
                cond = torch.as_tensor(prompt_embeds)
                if cond.shape[0] != len(prompts):
                    raise ValueError(f"prompt_embeds has {cond.shape[0]} rows for {len(prompts)} prompts")
                uncond = torch.as_tensor(negative_prompt_embeds).expand(len(prompts), *cond.shape[1:])
                _sample_with_unet(unet, cond, uncond, steps, guidance, seed, scheduler, on_step)
    finally:
        hook.remove()
    layers = recorder.layer_names
    if not layers:
        raise RuntimeError("no StyleInject router ran while sampling; is the adapter active (unet.set_adapters)?")
    probabilities, branches = _assemble(recorder, layers, len(prompts))
    if probabilities.shape[1] != len(timesteps):
        raise RuntimeError(f"{probabilities.shape[1]} routed calls for {len(timesteps)} UNet calls; please report")
    layer = style_inject_layers(unet)[layers[0]]
    num_experts = layer.styleinject_num_experts.get(recorder.adapter_name, 1)
    settings = {"steps": steps, "guidance": float(guidance), "seed": seed, "adapter_name": recorder.adapter_name}
    if is_pipeline:
        settings["scheduler"] = type(pipeline_or_unet.scheduler).__name__
        settings.update({k: v for k, v in (("height", height), ("width", width)) if v is not None})
        if negative_prompt is not None:
            settings["negative_prompt"] = negative_prompt
    log.info("recorded %d router(s) over %d UNet call(s) for %d prompt(s)", len(layers), len(timesteps), len(prompts))
    return RouterReport(layers, timesteps, prompts, probabilities, num_experts, settings, branches)
