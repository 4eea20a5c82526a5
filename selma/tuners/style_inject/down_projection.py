"""DMA's down-projection `Σ_i p_i A_i x`, fused: no loop over the styles (DESIGN §3.5).

`mixed_down_linear` (tokens) and `mixed_down_conv2d` (feature maps) either apply the stacked A_i in one matmul /
conv and mix the results (`stacked`), or mix the A_i per sample first and apply the mix once (`mix_weights`);
`auto` picks the cheaper for the shape.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F

Strategy = Literal["auto", "stacked", "mix_weights"]


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
