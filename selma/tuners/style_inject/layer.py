"""StyleInject layers for nn.Linear and nn.Conv2d (DESIGN §3.5), as PEFT tuner layers: `Linear` and `Conv2d`.

Each adds its base layer's shapes, router and forward to `StyleInjectLayer` (`layer_base.py`: the parameters per
adapter, the strength, the routing and the stacked layout of merged experts, all described there). The fused
down-projection is in `down_projection.py`, STA's rescaling in `adain.py`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .adain import adain_rescale, mean_row, token_mean
from .config import StyleInjectConfig
from .down_projection import mixed_down_conv2d, mixed_down_linear
from .layer_base import StyleInjectLayer


def add_up_projection(h: torch.Tensor, z: torch.Tensor, up: torch.Tensor, scale: float) -> torch.Tensor:
    """`h + scale · z Bᵀ` for h [B, T, out], z [B, T, r], B = up [out, r], as one addmm: the sum is the GEMM's
    epilogue instead of another pass over h. Without autograd it accumulates into h (the layer's own output)."""
    if not torch.is_grad_enabled() and h.is_contiguous():
        h.view(-1, h.shape[-1]).addmm_(z.reshape(-1, z.shape[-1]), up.t(), alpha=scale)
        return h
    return torch.addmm(h.reshape(-1, h.shape[-1]), z.reshape(-1, z.shape[-1]), up.t(), alpha=scale).view(h.shape)


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
        h = add_up_projection(h, z, self.styleinject_up[adapter], self._scale(adapter))
        gamma = self._gamma(adapter, probs)
        return h if gamma is None else self._rescale(adapter, h, gamma, row)

    # The stacked layout's steps (StyleInjectLayer._adapt_experts), on [B, T, C] tensors.
    def _mixed_down(self, x: torch.Tensor, down: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        return mixed_down_linear(x, down, probs)

    def _up(self, z: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        return F.linear(z, up)

    def _rescale(self, adapter: str, h: torch.Tensor, gamma: torch.Tensor, row: torch.Tensor | None) -> torch.Tensor:
        if h.shape[1] == 1:
            return h
        row = row if row is not None and row.dtype == h.dtype else None
        return adain_rescale(h, gamma, self.styleinject_eps[adapter], row, in_place=True)  # h: this layer's own

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
        return h if gamma is None else self._rescale(adapter, h, gamma, None)

    # The stacked layout's steps (StyleInjectLayer._adapt_experts), on [B, C, H, W] tensors.
    def _mixed_down(self, x: torch.Tensor, down: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        return mixed_down_conv2d(x, down, probs, self.conv_args)

    def _up(self, z: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, up)

    def _rescale(self, adapter: str, h: torch.Tensor, gamma: torch.Tensor, row: torch.Tensor | None) -> torch.Tensor:
        if h.shape[2] * h.shape[3] == 1:
            return h
        # As [B, positions, C] (a transposed view: no copy), the layout adain_rescale works on.
        positions_last = adain_rescale(
            h.flatten(2).transpose(1, 2), gamma, self.styleinject_eps[adapter], in_place=True
        )
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
