"""`StyleInjectLayer`: what the StyleInject Linear and Conv2d layers share (parameters, strength, routing).

Per adapter, with `n` styles, rank `r` and `s = alpha / r`:

- DMA: a router on the token-mean of the input (Linear) or a 1x1 conv on its spatial sum (Conv2d) gives
  `p = softmax(.)` per sample; `Δ = s · B(Σ_i p_i A_i x)` with the `A_i` stacked in one tensor and one shared,
  zero-initialised `B`.
- STA: `γ = hypernetwork(p)` (a zero-initialised Linear(n -> out)); with `h = W0 x + Δ` and per-sample,
  per-channel mean `μ` / std `σ = sqrt(var + eps)` over tokens (Linear) or positions (Conv2d):
  `y = h + γ · (h − μ) / σ`.

With `B = 0` and a zero hypernetwork, `Δ = 0` and `γ = 0` exactly, so a fresh layer returns the base output.
Parameters live in dicts keyed by adapter name (PEFT's layout): `styleinject_down` [n, r, in(, kh, kw)],
`styleinject_up` [out, r(, 1, 1)], `styleinject_router` (Linear(in, n) / Conv2d(in, n, 1)), `styleinject_hyper`
(Linear(n, out)). The router is absent with `use_dma=False`, the hypernetwork with `use_sta=False`.

Stacked layout (`num_experts` K > 1, what an exact merge of K experts needs): K independent sub-experts per
layer, each with its own n down-projections, up-projection, router softmax and hypernetwork, all fed the same
input and the same base output `W0 x`; the layer returns `W0 x + Σ_k w_k (y_k − W0 x)`, with `y_k` what sub-expert
k alone would return. The same four parameters hold them side by side: `styleinject_down` [K·n, r, ...],
`styleinject_up` [out, K·r(, 1, 1)], the router with K·n outputs (a softmax per group of n), the hypernetwork
Linear(n, K·out) (rows k·out ... (k+1)·out are sub-expert k's). With K = 1 and w = 1 this is the plain layer.

The Linear and Conv2d variants (`layer.py`) add the shapes and the forward; the fused math is in
`down_projection.py` and `adain.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from .config import StyleInjectConfig

RouterObserver = Callable[[str, torch.Tensor], None]


class StyleInjectLayer(BaseTunerLayer):
    """What the Linear and Conv2d variants share: parameters per adapter, strength, router observers."""

    adapter_layer_names = ("styleinject_down", "styleinject_up", "styleinject_router", "styleinject_hyper")
    other_param_names = (
        "styleinject_r",
        "styleinject_num_styles",
        "styleinject_scaling",
        "styleinject_strength",
        "styleinject_eps",
        "styleinject_num_experts",
        "styleinject_expert_weights",
    )

    def __init__(self, base_layer: nn.Module, **kwargs: Any) -> None:
        self.base_layer = base_layer
        self.styleinject_down = nn.ParameterDict({})
        self.styleinject_up = nn.ParameterDict({})
        self.styleinject_router = nn.ModuleDict({})
        self.styleinject_hyper = nn.ModuleDict({})
        self.styleinject_r: dict[str, int] = {}
        self.styleinject_num_styles: dict[str, int] = {}
        self.styleinject_scaling: dict[str, float] = {}  # s = alpha / r
        self.styleinject_strength: dict[str, float] = {}  # multiplies Δ and γ (1 = as trained, 0 = off)
        self.styleinject_eps: dict[str, float] = {}
        self.styleinject_num_experts: dict[str, int] = {}  # K sub-experts (the stacked layout); 1 = plain
        self.styleinject_expert_weights: dict[str, list[float]] = {}  # w_k per sub-expert
        self._disable_adapters = False
        self.merged_adapters: list[str] = []
        # Called as observer(adapter_name, p) with p [batch, n] on every routed forward; see router_recording.
        self.router_observers: list[RouterObserver] = []
        self.kwargs = kwargs

    # Subclasses define in_features, out_features, _down_shape, _up_shape, _make_router, _router_logits, _adapt.

    def update_layer(self, adapter_name: str, config: StyleInjectConfig) -> None:
        """Create (or re-create) the parameters of one adapter, then move them to the base layer's device."""
        # Drawn on the CPU, from torch's default generator, as PEFT's own layers do: a seed then fixes the init on
        # every device (CUDA has generators of its own). A meta base stays meta: shapes only, no memory.
        device = self.get_base_layer().weight.device
        device = device if device.type == "meta" else torch.device("cpu")
        n, r, k = config.num_styles, config.r, config.num_experts
        down = torch.empty(k * n, *self._down_shape(r), device=device)
        up = torch.empty(*self._up_shape(k * r), device=device)
        with torch.no_grad():
            for style in down:  # each A_i is initialised as its own LoRA A (fan-in = in·kh·kw, not r·in)
                nn.init.kaiming_uniform_(style, a=math.sqrt(5))
            if config.init_weights:
                up.zero_()
            else:
                nn.init.kaiming_uniform_(up, a=math.sqrt(5))
        self.styleinject_down[adapter_name] = nn.Parameter(down)
        self.styleinject_up[adapter_name] = nn.Parameter(up)
        for modules in (self.styleinject_router, self.styleinject_hyper):
            if adapter_name in modules:  # re-created with a new config
                del modules[adapter_name]
        if config.use_dma:
            self.styleinject_router[adapter_name] = self._make_router(k * n, device)
        if config.use_sta:
            hyper = nn.Linear(n, k * self.out_features, device=device)
            if config.init_weights:
                nn.init.zeros_(hyper.weight)
                nn.init.zeros_(hyper.bias)
            self.styleinject_hyper[adapter_name] = hyper
        self.styleinject_r[adapter_name] = r
        self.styleinject_num_styles[adapter_name] = n
        self.styleinject_scaling[adapter_name] = config.alpha / r
        self.styleinject_strength[adapter_name] = 1.0
        self.styleinject_eps[adapter_name] = float(config.sta_eps)
        self.styleinject_num_experts[adapter_name] = k
        self.styleinject_expert_weights[adapter_name] = list(config.expert_weights or [1.0] * k)
        self._move_adapter_to_device_of_base_layer(adapter_name)
        self.set_adapter(self.active_adapters, inference_mode=config.inference_mode)

    # Strength, with diffusers' names: `unet.set_adapters(names, weights)` calls set_scale on every tuner layer,
    # a `cross_attention_kwargs={"scale": w}` forward calls scale_layer / unscale_layer.
    def set_scale(self, adapter: str, scale: float) -> None:
        """Strength of one adapter: Δ and γ are multiplied by `scale` (0 = the base layer exactly)."""
        if adapter in self.styleinject_strength:
            self.styleinject_strength[adapter] = float(scale)

    def scale_layer(self, scale: float) -> None:
        """Multiply the strength of the active adapters by `scale`."""
        for adapter in self.active_adapters:
            if adapter in self.styleinject_strength:
                self.styleinject_strength[adapter] *= scale

    def unscale_layer(self, scale: float | None = None) -> None:
        """Divide the strength of the active adapters by `scale`; None resets it to 1."""
        for adapter in self.active_adapters:
            if adapter in self.styleinject_strength:
                current = self.styleinject_strength[adapter]
                self.styleinject_strength[adapter] = 1.0 if scale is None else current / scale

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        raise ValueError(
            "A StyleInject adapter cannot be merged into the base weights: its update depends on the input (router "
            "probabilities and feature statistics). Keep it unmerged (skip merge_and_unload / fuse_lora)."
        )

    def unmerge(self) -> None:
        """Nothing to undo: StyleInject layers are never merged."""

    def _active_here(self) -> list[str]:
        if self.disable_adapters:
            return []
        return [adapter for adapter in self.active_adapters if adapter in self.styleinject_down]

    def _route(self, adapter: str, x: torch.Tensor, row: torch.Tensor | None = None) -> torch.Tensor:
        """p [batch, n]: the router's softmax (reported to the observers), or the constant 1 without DMA.
        Stacked layout: [batch, K·n], a softmax per sub-expert's group of n (each group sums to 1)."""
        experts = self.styleinject_num_experts.get(adapter, 1)
        if adapter not in self.styleinject_router:
            return x.new_ones(x.shape[0], experts)
        logits = self._router_logits(self.styleinject_router[adapter], x, row)
        if experts == 1:
            probs = torch.softmax(logits, dim=-1)
        else:
            probs = torch.softmax(logits.view(logits.shape[0], experts, -1), dim=-1).flatten(1)
        for observer in self.router_observers:
            observer(adapter, probs)
        return probs

    def _gamma(self, adapter: str, probs: torch.Tensor) -> torch.Tensor | None:
        """γ [batch, out] from the hypernetwork, times the strength; None without STA."""
        if adapter not in self.styleinject_hyper:
            return None
        hyper = self.styleinject_hyper[adapter]
        gamma = F.linear(probs, hyper.weight, hyper.bias)
        strength = self.styleinject_strength[adapter]
        return gamma if strength == 1.0 else gamma * strength

    def _scale(self, adapter: str) -> float:
        return self.styleinject_scaling[adapter] * self.styleinject_strength[adapter]

    # ------------------------------------------------------------------ the stacked layout (merged experts)
    def _is_stacked(self, adapter: str) -> bool:
        return self.styleinject_num_experts.get(adapter, 1) > 1 or self.styleinject_expert_weights.get(
            adapter, [1.0]
        ) != [1.0]

    def _adapt_experts(
        self, adapter: str, x: torch.Tensor, h: torch.Tensor, row: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`h + Σ_k w_k (y_k − h)` with `y_k` sub-expert k's output on the same h (see the module docstring).

        A loop over the K sub-experts (K is the number of merged experts, a handful), each with its styles fused
        as in the plain layer. Every y_k starts from the same h: AdaIN statistics are sub-expert k's own."""
        down, up = self.styleinject_down[adapter], self.styleinject_up[adapter]
        weights = self.styleinject_expert_weights[adapter]
        experts = len(weights)
        styles, rank = down.shape[0] // experts, up.shape[1] // experts
        probs = self._route(adapter, x, row)
        gammas = None
        if adapter in self.styleinject_hyper:
            hyper = self.styleinject_hyper[adapter]
            per_expert = probs.view(probs.shape[0], experts, styles)
            gammas = torch.einsum("bkn,kon->bko", per_expert, hyper.weight.view(experts, -1, styles))
            gammas = (gammas + hyper.bias.view(experts, -1)) * self.styleinject_strength[adapter]
        scale, total = self._scale(adapter), h
        for k, weight in enumerate(weights):
            own_styles, own_ranks = slice(k * styles, (k + 1) * styles), slice(k * rank, (k + 1) * rank)
            z = self._mixed_down(x, down[own_styles], probs[:, own_styles])
            y = torch.add(h, self._up(z, up[:, own_ranks]), alpha=scale)
            if gammas is not None:
                y = self._rescale(adapter, y, gammas[:, k], row)
            total = torch.add(total, y - h, alpha=weight)
        return total
