"""StyleInject layers for nn.Linear and nn.Conv2d (DESIGN §3.5), as PEFT tuner layers.

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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from .config import StyleInjectConfig

Strategy = Literal["auto", "stacked", "mix_weights"]
RouterObserver = Callable[[str, torch.Tensor], None]


def _mix_weights_is_cheaper(num_styles: int, positions: int) -> bool:
    # Per sample: applying all n A_i then mixing costs n·T·r·in multiply-adds; mixing the A_i first with p and
    # applying the mix once costs (n + T)·r·in. Both give Σ p_i A_i x; pick the cheaper (mixing wins unless n or
    # T is 1, e.g. STA alone or a 1x1 feature map).
    return num_styles + positions < num_styles * positions


def mixed_down_linear(
    x: torch.Tensor, down: torch.Tensor, coeffs: torch.Tensor, strategy: Strategy = "auto"
) -> torch.Tensor:
    """`Σ_i coeffs[b, i] · A_i x[b]` for x [B, T, in], down [n, r, in], coeffs [B, n] -> [B, T, r].

    No loop over styles: either one matmul over the stacked A (`stacked`) or one matmul that mixes the A_i per
    sample followed by one batched matmul (`mix_weights`); `auto` picks the cheaper for this shape.
    """
    batch, tokens, width = x.shape
    num_styles, rank = down.shape[0], down.shape[1]
    if strategy == "mix_weights" or (strategy == "auto" and _mix_weights_is_cheaper(num_styles, tokens)):
        mixed = (coeffs @ down.reshape(num_styles, rank * width)).reshape(batch, rank, width)
        return torch.bmm(x, mixed.transpose(1, 2))
    per_style = F.linear(x, down.reshape(num_styles * rank, width)).reshape(batch, tokens, num_styles, rank)
    return torch.matmul(coeffs[:, None, None, :], per_style).squeeze(2)


def mixed_down_conv2d(
    x: torch.Tensor, down: torch.Tensor, coeffs: torch.Tensor, conv_args: dict[str, Any], strategy: Strategy = "auto"
) -> torch.Tensor:
    """`Σ_i coeffs[b, i] · conv(x[b], A_i)` for x [B, C, H, W], down [n, r, C, kh, kw], coeffs [B, n].

    One conv over the stacked kernels (`stacked`), or per-sample mixed kernels applied by one grouped conv
    (`mix_weights`); `conv_args` are the base conv's stride / padding / dilation. Returns [B, r, H', W'].
    """
    batch, channels, height, width = x.shape
    num_styles, rank = down.shape[0], down.shape[1]
    if strategy == "mix_weights" or (strategy == "auto" and _mix_weights_is_cheaper(num_styles, height * width)):
        kernels = (coeffs @ down.reshape(num_styles, -1)).reshape(batch * rank, *down.shape[2:])
        out = F.conv2d(x.reshape(1, batch * channels, height, width), kernels, groups=batch, **conv_args)
        return out.reshape(batch, rank, *out.shape[2:])
    out = F.conv2d(x, down.reshape(num_styles * rank, *down.shape[2:]), **conv_args)
    spatial = out.shape[2:]
    mixed = torch.bmm(coeffs[:, None, :], out.reshape(batch, num_styles, -1))
    return mixed.reshape(batch, rank, *spatial)


def mean_row(x: torch.Tensor) -> torch.Tensor:
    """[B, 1, T] filled with 1/T for x [B, T, C]: `torch.bmm(mean_row(x), x)` is the mean over T."""
    return x.new_full((x.shape[0], 1, x.shape[1]), 1.0 / x.shape[1])


def token_mean(x: torch.Tensor, row: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over dim 1 of x [B, T, C] -> [B, 1, C], as a batched matmul with a 1/T row (`row`, made if not
    given): on CPU several times faster than `mean` / `var_mean` over a non-innermost dimension."""
    return torch.bmm(mean_row(x) if row is None else row, x)


def adain_rescale(h: torch.Tensor, gamma: torch.Tensor, eps: float, row: torch.Tensor | None = None) -> torch.Tensor:
    """STA on h [B, T, C]: `h + γ · (h − μ) / sqrt(var + eps)`, with μ and the (biased) var per sample and channel
    over the T positions, γ [B, C]; `row` as in `token_mean`.

    Equal to the paper's `(σ + γ)(h − μ)/σ + μ`, but exact (not rounded) when γ = 0. The variance is the mean of
    the centred squares (two passes: no cancellation in half precision). With T = 1, h − μ = 0: h comes back.
    """
    row = mean_row(h) if row is None else row
    centred = h - token_mean(h, row)
    var = token_mean(centred.square(), row)
    return torch.addcmul(h, centred, gamma.view(h.shape[0], 1, -1) * torch.rsqrt(var.add_(eps)))


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


class Linear(nn.Module, StyleInjectLayer):
    """StyleInject on an nn.Linear; inputs [batch, (tokens...,) in], statistics over all token dimensions."""

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: StyleInjectConfig, **kwargs: Any) -> None:
        super().__init__()
        StyleInjectLayer.__init__(self, base_layer, **kwargs)
        base = self.get_base_layer()  # base_layer may itself be another adapter's layer
        self.in_features, self.out_features = base.in_features, base.out_features
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, config)

    def _down_shape(self, r: int) -> tuple[int, ...]:
        return (r, self.in_features)

    def _up_shape(self, r: int) -> tuple[int, ...]:
        return (self.out_features, r)

    def _make_router(self, num_styles: int, device: torch.device) -> nn.Module:
        return nn.Linear(self.in_features, num_styles, device=device)

    def _router_logits(self, router: nn.Linear, x: torch.Tensor, row: torch.Tensor | None) -> torch.Tensor:
        return F.linear(token_mean(x, row).squeeze(1), router.weight, router.bias)

    def _adapt(self, adapter: str, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One adapter on x [B, T, in] and h [B, T, out] (the base output, or the previous adapter's)."""
        # At 8x8 latents these layers are bound by per-op overhead, not arithmetic: hence few ops, a shared
        # mean row, and no no-op casts.
        down = self.styleinject_down[adapter]
        if x.dtype != down.dtype:
            x = self._cast_input_dtype(x, down.dtype)
        if h.dtype != down.dtype:
            h = h.to(down.dtype)
        row = mean_row(x)
        if self._is_stacked(adapter):
            return self._adapt_experts(adapter, x, h, row)
        probs = self._route(adapter, x, row)
        z = mixed_down_linear(x, down, probs)
        h = torch.add(h, F.linear(z, self.styleinject_up[adapter]), alpha=self._scale(adapter))
        gamma = self._gamma(adapter, probs)
        if gamma is not None and x.shape[1] > 1:
            h = adain_rescale(h, gamma, self.styleinject_eps[adapter], row if row.dtype == h.dtype else None)
        return h

    # The stacked layout's steps (StyleInjectLayer._adapt_experts), on [B, T, C] tensors.
    def _mixed_down(self, x: torch.Tensor, down: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        return mixed_down_linear(x, down, probs)

    def _up(self, z: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        return F.linear(z, up)

    def _rescale(self, adapter: str, h: torch.Tensor, gamma: torch.Tensor, row: torch.Tensor | None) -> torch.Tensor:
        if h.shape[1] == 1:
            return h
        return adain_rescale(
            h, gamma, self.styleinject_eps[adapter], row if row is not None and row.dtype == h.dtype else None
        )

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)
        adapters = self._active_here()
        if not adapters:
            return result
        h = result
        if x.dim() != 3:  # work on [batch, tokens, channels]; a 2-D input is one token per sample (STA: no-op)
            batch = x.shape[0] if x.dim() > 1 else 1
            x, h = x.reshape(batch, -1, self.in_features), h.reshape(batch, -1, self.out_features)
        for adapter in adapters:
            h = self._adapt(adapter, x, h)
        if h.dtype != result.dtype:
            h = h.to(result.dtype)
        return h if h.shape == result.shape else h.reshape(result.shape)

    def __repr__(self) -> str:
        return "styleinject." + super().__repr__()


class Conv2d(nn.Module, StyleInjectLayer):
    """StyleInject on an nn.Conv2d: A_i are convs like the base (kernel, stride, padding, dilation), B is 1x1,
    the router is a 1x1 conv on the spatial sum of the input, statistics per channel over positions."""

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: StyleInjectConfig, **kwargs: Any) -> None:
        super().__init__()
        StyleInjectLayer.__init__(self, base_layer, **kwargs)
        base = self.get_base_layer()  # base_layer may itself be another adapter's layer
        if base.groups != 1:
            raise ValueError(
                f"StyleInject supports Conv2d with groups=1 only, got groups={base.groups} ({base}); leave this "
                "module out of target_modules"
            )
        if base.padding_mode != "zeros":
            raise ValueError(
                f"StyleInject supports Conv2d with padding_mode='zeros' only, got {base.padding_mode!r} ({base}); "
                "leave this module out of target_modules"
            )
        self.in_features, self.out_features = base.in_channels, base.out_channels
        self.conv_args = {"stride": base.stride, "padding": base.padding, "dilation": base.dilation}
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, config)

    def _down_shape(self, r: int) -> tuple[int, ...]:
        return (r, self.in_features, *self.get_base_layer().kernel_size)

    def _up_shape(self, r: int) -> tuple[int, ...]:
        return (self.out_features, r, 1, 1)

    def _make_router(self, num_styles: int, device: torch.device) -> nn.Module:
        return nn.Conv2d(self.in_features, num_styles, kernel_size=1, device=device)

    def _router_logits(self, router: nn.Conv2d, x: torch.Tensor, row: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(x.sum(dim=(2, 3), keepdim=True), router.weight, router.bias).flatten(1)

    def _adapt(self, adapter: str, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One adapter on x [B, C, H, W] and h [B, out, H', W'] (the base output, or the previous adapter's)."""
        down = self.styleinject_down[adapter]
        if x.dtype != down.dtype:
            x = self._cast_input_dtype(x, down.dtype)
        if h.dtype != down.dtype:
            h = h.to(down.dtype)
        if self._is_stacked(adapter):
            return self._adapt_experts(adapter, x, h)
        probs = self._route(adapter, x)
        z = mixed_down_conv2d(x, down, probs, self.conv_args)
        h = torch.add(h, F.conv2d(z, self.styleinject_up[adapter]), alpha=self._scale(adapter))
        gamma = self._gamma(adapter, probs)
        if gamma is not None and h.shape[2] * h.shape[3] > 1:
            # As [B, positions, C] (a transposed view: no copy), the layout adain_rescale works on.
            positions_last = adain_rescale(h.flatten(2).transpose(1, 2), gamma, self.styleinject_eps[adapter])
            h = positions_last.transpose(1, 2).reshape(h.shape)
        return h

    # The stacked layout's steps (StyleInjectLayer._adapt_experts), on [B, C, H, W] tensors.
    def _mixed_down(self, x: torch.Tensor, down: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        return mixed_down_conv2d(x, down, probs, self.conv_args)

    def _up(self, z: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, up)

    def _rescale(self, adapter: str, h: torch.Tensor, gamma: torch.Tensor, row: torch.Tensor | None) -> torch.Tensor:
        if h.shape[2] * h.shape[3] == 1:
            return h
        positions_last = adain_rescale(h.flatten(2).transpose(1, 2), gamma, self.styleinject_eps[adapter])
        return positions_last.transpose(1, 2).reshape(h.shape)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        result = self.base_layer(x, *args, **kwargs)
        adapters = self._active_here()
        if not adapters:
            return result
        if x.dim() != 4:
            raise ValueError(f"StyleInject Conv2d expects a batched [B, C, H, W] input, got shape {tuple(x.shape)}")
        h = result
        for adapter in adapters:
            h = self._adapt(adapter, x, h)
        return h if h.dtype == result.dtype else h.to(result.dtype)

    def __repr__(self) -> str:
        return "styleinject." + super().__repr__()
