"""The tensor shapes of one StyleInject module: the base weight it adapts, and what its config makes per part.

Shapes only (no file, no UNet): `style_inject_files` checks experts with them, the merge pads and stacks by them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from ..tuners.style_inject import StyleInjectConfig


def base_weight_shape(name: str, parts: Mapping[str, torch.Tensor]) -> tuple[int, ...]:
    """The weight shape of the base layer a module's tensors adapt: [out, in] (Linear) or [out, in, kh, kw]."""
    down, up = parts["styleinject_down"], parts["styleinject_up"]
    if down.dim() == 3 and up.dim() == 2:
        return (up.shape[0], down.shape[2])
    if down.dim() == 5 and up.dim() == 4:
        return (up.shape[0], down.shape[2], *down.shape[3:])
    raise ValueError(
        f"module {name!r}: styleinject_down {tuple(down.shape)} with styleinject_up {tuple(up.shape)} is neither a "
        "Linear ([K·n, r, in] with [out, K·r]) nor a Conv2d ([K·n, r, in, kh, kw] with [out, K·r, 1, 1]) adapter"
    )


def expected_shapes(parts: Mapping[str, torch.Tensor], config: StyleInjectConfig, name: str) -> dict[str, tuple]:
    k, n, r = config.num_experts, config.num_styles, config.r
    base = base_weight_shape(name, parts)
    out, width, kernel = base[0], base[1], base[2:]
    one_by_one = (1, 1) if kernel else ()
    shapes = {"styleinject_down": (k * n, r, width, *kernel), "styleinject_up": (out, k * r, *one_by_one)}
    if config.use_dma:
        shapes["styleinject_router.weight"] = (k * n, width, *one_by_one)
        shapes["styleinject_router.bias"] = (k * n,)
    if config.use_sta:
        shapes["styleinject_hyper.weight"] = (k * out, n)
        shapes["styleinject_hyper.bias"] = (k * out,)
    return shapes
