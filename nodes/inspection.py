"""The router inspector node: watch a StyleInject MODEL's routers while ComfyUI samples (SELMA Load StyleInject,
which patches the MODEL, is in experts.py).

The inspector runs ComfyUI's own sampler and records the router of every patched layer per UNet call. ComfyUI
evaluates the positive and the negative prompt in one batched call (or in several when memory is short) and says
which chunk of the batch is which in `cond_or_uncond` (0 = positive, 1 = negative); a UNet function wrapper reads
it together with the call's sigma. `RouterTrace` groups the calls into model evaluations (what the core's report
calls steps: one per denoising step, two for Heun-type samplers) and averages them into probabilities
[prompt, step, branch, layer, route]; the core's `RouterReport` and plots take it from there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from .glue.comfy_env import progress_reporter
from .glue.images import pil_to_tensor

CATEGORY = "SELMA/experts"
UI_KEY = "selma_router"  # the ui entry web/selma_router_inspector.js draws
# Offered outside ComfyUI (tests, schema checks); inside it the sampler's own lists are used.
_SAMPLERS = ("euler", "euler_ancestral", "heun", "dpm_2", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_sde", "ddim", "uni_pc")
_SCHEDULERS = ("normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta")


def _sampler_choices() -> tuple[list[str], list[str]]:
    try:
        import comfy.samplers
    except ImportError:
        return list(_SAMPLERS), list(_SCHEDULERS)
    return list(comfy.samplers.KSampler.SAMPLERS), list(comfy.samplers.KSampler.SCHEDULERS)


def parse_prompts(values: list[str]) -> list[str]:
    """The prompts of the `prompts` input: each item of a STRING list is one prompt; a single (multiline) string
    holds one prompt per non-empty line."""
    if len(values) == 1:
        values = values[0].splitlines()
    prompts = [p.strip() for p in values if isinstance(p, str) and p.strip()]
    if not prompts:
        raise ValueError("prompts is empty: type one prompt per line, or connect a STRING list (e.g. SELMA prompts)")
    return prompts


# --------------------------------------------------------------------------------------------------- recording


@dataclass
class RouterTrace:
    """The router probabilities of one sampling run of `batch` latents, gathered UNet call by UNet call.

    `add_call(timestep, cond_or_uncond, probs)`: `probs[layer]` is [chunks · batch, routes], chunk k computed for
    branch `cond_or_uncond[k]` (0 = cond, 1 = uncond). A call starts a new step unless it continues the current one
    (same timestep and no `step_done()` in between: cond and uncond run apart, or area conditioning); several calls
    of one step and branch are averaged, so every router row still sums to one."""

    batch: int
    layers: list[str] = field(default_factory=list)
    timesteps: list[float] = field(default_factory=list)
    _calls: list[tuple[int, list[int], dict[str, Any]]] = field(default_factory=list)
    _step_done: bool = True

    def step_done(self) -> None:
        """The sampler finished a denoising step: the next call starts a new step even at the same timestep."""
        self._step_done = True

    def add_call(self, timestep: float, cond_or_uncond: list[int], probs: Mapping[str, Any]) -> None:
        if any(branch not in (0, 1) for branch in cond_or_uncond):
            raise ValueError(f"cond_or_uncond is {cond_or_uncond!r}; expected 0 (cond) and 1 (uncond) entries")
        for name, p in probs.items():
            if p.shape[0] != len(cond_or_uncond) * self.batch:
                raise ValueError(
                    f"layer {name!r} routed a batch of {p.shape[0]}, but {len(cond_or_uncond)} chunk(s) of "
                    f"{self.batch} latent(s) were sampled"
                )
        if self._step_done or timestep != self.timesteps[-1]:
            self.timesteps.append(float(timestep))
            self._step_done = False
        self.layers += [name for name in probs if name not in self.layers]  # forward order, as the core's reports
        probs = {name: p.detach().float().cpu() for name, p in probs.items()}
        self._calls.append((len(self.timesteps) - 1, list(cond_or_uncond), probs))

    def probabilities(self):
        """[batch, steps, 2 (cond, uncond), layers, routes] float32; NaN where nothing was recorded."""
        import torch

        if not self._calls:
            raise ValueError("no router probabilities were recorded: the sampler never ran a StyleInject layer")
        routes = next(iter(self._calls[0][2].values())).shape[1]
        shape = (self.batch, len(self.timesteps), 2, len(self.layers), routes)
        sums, counts = torch.zeros(shape), torch.zeros(*shape[:-1], 1)
        index = {name: i for i, name in enumerate(self.layers)}
        for step, branches, probs in self._calls:
            for name, p in probs.items():
                for chunk, branch in zip(p.view(len(branches), self.batch, routes), branches, strict=True):
                    sums[:, step, branch, index[name]] += chunk
                    counts[:, step, branch, index[name]] += 1
        return torch.where(counts > 0, sums / counts.clamp(min=1), torch.full_like(sums, float("nan")))


@dataclass(frozen=True)
class InspectSettings:
    """What the inspector samples with (ComfyUI's KSampler settings), validated."""

    seed: int = 0
    steps: int = 20
    cfg: float = 7.5
    sampler_name: str = "euler"
    scheduler: str = "normal"
    width: int = 512
    height: int = 512
    negative: str = ""
    latent_size: tuple[int, int] | None = None  # (height, width) of a connected LATENT: overrides width/height

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {self.steps!r}")
        if not isinstance(self.cfg, int | float) or not 0 <= self.cfg < float("inf"):
            raise ValueError(f"cfg must be a finite number >= 0 (the guidance scale), got {self.cfg!r}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 8 or value % 8:
                raise ValueError(f"{name} must be a multiple of 8 (pixels; the latent is 1/8 of it), got {value!r}")


def report_from_traces(prompts: list[str], traces: list[RouterTrace], num_experts: int, settings: dict):
    """The core's `RouterReport` from one trace per prompt (same sampler settings, so the same steps and layers)."""
    import torch

    from ..selma.inspection.router_report import RouterReport

    if len(traces) != len(prompts):
        raise ValueError(f"{len(traces)} traces for {len(prompts)} prompts")
    first = traces[0]
    for prompt, trace in zip(prompts, traces, strict=True):
        if trace.layers != first.layers or len(trace.timesteps) != len(first.timesteps):
            raise ValueError(
                f"prompt {prompt!r} ran {len(trace.timesteps)} model evaluations over {len(trace.layers)} layers, "
                f"the first prompt {len(first.timesteps)} over {len(first.layers)}; an adaptive sampler cannot be "
                "compared step by step: pick a fixed-step sampler (euler, dpmpp_2m, ...)"
            )
    probabilities = torch.cat([trace.probabilities() for trace in traces])
    if torch.isnan(probabilities).any():
        raise ValueError("some steps ran without the cond or the uncond branch; nothing to compare there")
    return RouterReport(list(first.layers), list(first.timesteps), list(prompts), probabilities, num_experts, settings)


def ui_payload(report) -> dict:
    """What web/selma_router_inspector.js draws: the report's axes and its probabilities to 4 decimals
    ([prompt][step][branch][layer][route]; the full-precision numbers are the node's JSON output)."""
    from ..selma.inspection.router_plots import short_layer_name

    return {
        "layers": list(report.layers),
        "short_layers": [short_layer_name(name) for name in report.layers],
        "steps": len(report.timesteps),
        "timesteps": [round(t, 3) for t in report.timesteps],
        "prompts": list(report.prompts),
        "branches": ["cond", "uncond"],
        "num_styles": report.num_styles,
        "num_experts": report.num_experts,
        "probabilities": report.probabilities.double().mul(1e4).round().div(1e4).tolist(),
    }


# --------------------------------------------------------------------------------------------------- ComfyUI


@contextmanager
def _traced(model: Any, layers: Mapping[str, Any], trace: RouterTrace) -> Iterator[None]:
    """Record the routers of `layers` into `trace` while `model` (a clone the caller samples with) runs."""
    from ..selma.tuners.style_inject import record_router
    from .glue.style_inject_patch import ADAPTER

    previous = model.model_options.get("model_function_wrapper")
    model_sampling = model.get_model_object("model_sampling")

    def unet_call(apply_model: Callable, args: dict) -> Any:
        recorder.clear()
        if previous is not None:
            out = previous(apply_model, args)
        else:
            out = apply_model(args["input"], args["timestep"], **args["c"])
        timestep = float(model_sampling.timestep(args["timestep"][:1]).reshape(-1)[0])  # sigma -> 0..999
        probs = {name: sum(entries) / len(entries) for name, entries in recorder.probs.items()}
        trace.add_call(timestep, args["cond_or_uncond"], probs)
        return out

    with record_router(layers, ADAPTER) as recorder:
        model.set_model_unet_function_wrapper(unet_call)
        # Always evaluate the uncond branch, also at cfg 1 (the image is the same): the report needs both.
        model.model_options["disable_cfg1_optimization"] = True
        yield


def sample_router(model: Any, clip: Any, prompts: list[str], settings: InspectSettings) -> list[RouterTrace]:
    """Sample each prompt with ComfyUI's sampler (same seed, so the same initial noise for every prompt) and
    return one RouterTrace per prompt; progress and Cancel through ComfyUI's bar."""
    import comfy.model_management
    import comfy.sample
    import torch

    from .glue.style_inject_patch import style_inject_layers_of

    layers = style_inject_layers_of(model)
    if not layers:
        raise ValueError("this MODEL has no StyleInject expert: connect the MODEL output of SELMA Load StyleInject")
    negative = clip.encode_from_tokens_scheduled(clip.tokenize(settings.negative))
    progress = progress_reporter(len(prompts) * settings.steps)
    traces = []
    for index, prompt in enumerate(prompts):
        positive = clip.encode_from_tokens_scheduled(clip.tokenize(prompt))
        size = settings.latent_size or (settings.height // 8, settings.width // 8)
        latent = torch.zeros([1, 4, *size], device=comfy.model_management.intermediate_device())
        latent = comfy.sample.fix_empty_latent_channels(model, latent)
        noise = comfy.sample.prepare_noise(latent, settings.seed, None)
        trace, clone = RouterTrace(batch=1), model.clone()

        def on_step(step: int, x0: Any, x: Any, total: int, _trace=trace, _done=index * settings.steps) -> None:
            _trace.step_done()
            progress(_done + step + 1, len(prompts) * settings.steps)

        with _traced(clone, layers, trace):
            comfy.sample.sample(
                clone, noise, settings.steps, settings.cfg, settings.sampler_name, settings.scheduler, positive,
                negative, latent, callback=on_step, disable_pbar=True, seed=settings.seed,
            )  # fmt: skip
        traces.append(trace)
    return traces


class SelmaRouterInspector:
    DESCRIPTION = (
        "Samples each prompt with a StyleInject MODEL (from SELMA Load StyleInject) and records every router per "
        "layer, per step, for the positive (cond) and negative (uncond) branch: a layers x steps heatmap per "
        "prompt, a 2-D embedding of the router vectors across prompts (the paper's Fig. 9), and the numbers as "
        "JSON. The node shows the heatmap interactively (hover a cell; pick a prompt and branch)."
    )
    CATEGORY = CATEGORY
    INPUT_IS_LIST = True
    RETURN_TYPES = ("IMAGE", "IMAGE", "STRING")
    RETURN_NAMES = ("heatmaps", "embedding", "router_json")
    OUTPUT_TOOLTIPS = (
        "a layers x steps heatmap per prompt and branch",
        "the router vectors on two principal components",
        "the probabilities as JSON",
    )
    OUTPUT_NODE = True
    FUNCTION = "inspect"

    @classmethod
    def INPUT_TYPES(cls):
        samplers, schedulers = _sampler_choices()
        return {
            "required": {
                "model": ("MODEL", {"tooltip": "a MODEL with a StyleInject expert (SELMA Load StyleInject)"}),
                "clip": ("CLIP", {"tooltip": "encodes the prompts (and the negative)"}),
                "prompts": ("STRING", {"multiline": True, "default": "", "tooltip": "one per line, or a STRING list"}),
                "seed": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 0xFFFFFFFFFFFFFFFF,
                        "tooltip": "the initial noise of every prompt",
                    },
                ),
                "steps": (
                    "INT",
                    {"default": 20, "min": 1, "max": 1000, "tooltip": "sampling steps: the heatmap's columns"},
                ),
                "cfg": (
                    "FLOAT",
                    {
                        "default": 7.5,
                        "min": 0.0,
                        "max": 100.0,
                        "step": 0.1,
                        "round": 0.01,
                        "tooltip": "guidance scale, as in KSampler",
                    },
                ),
                "sampler_name": (samplers, {"tooltip": "as in KSampler"}),
                "scheduler": (schedulers, {"tooltip": "as in KSampler"}),
                "width": (
                    "INT",
                    {"default": 512, "min": 64, "max": 4096, "step": 8, "tooltip": "image width in pixels"},
                ),
                "height": (
                    "INT",
                    {"default": 512, "min": 64, "max": 4096, "step": 8, "tooltip": "image height in pixels"},
                ),
            },
            "optional": {
                "negative": ("STRING", {"multiline": True, "default": "", "tooltip": "the uncond prompt"}),
                "latent": (
                    "LATENT",
                    {"tooltip": "if connected: sample at its size, not width/height (e.g. the shipped model's)"},
                ),
            },
        }

    def inspect(
        self,
        model,
        clip,
        prompts,
        seed,
        steps,
        cfg,
        sampler_name,
        scheduler,
        width,
        height,
        negative=("",),
        latent=None,
    ):
        from ..selma.inspection.router_plots import embedding, heatmap
        from .glue.style_inject_patch import ADAPTER, style_inject_layers_of

        model, clip, prompts = model[0], clip[0], parse_prompts(prompts)
        values = (seed, steps, cfg, sampler_name, scheduler, width, height, negative)
        size = tuple(latent[0]["samples"].shape[-2:]) if latent else None
        settings = InspectSettings(*(v[0] for v in values), latent_size=size)
        traces = sample_router(model, clip, prompts, settings)
        layer = next(iter(style_inject_layers_of(model).values()))
        experts = layer.styleinject_num_experts.get(ADAPTER, 1)
        report = report_from_traces(prompts, traces, experts, {**asdict(settings), "backend": "comfyui"})
        heatmaps = pil_to_tensor([heatmap(report, i, "cond") for i in range(len(prompts))])
        return {
            "ui": {UI_KEY: [ui_payload(report)]},
            "result": (heatmaps, pil_to_tensor([embedding(report)]), json.dumps(report.to_json())),
        }


NODE_CLASS_MAPPINGS = {"SelmaRouterInspector": SelmaRouterInspector}
NODE_DISPLAY_NAME_MAPPINGS = {"SelmaRouterInspector": "SELMA Router Inspector"}
