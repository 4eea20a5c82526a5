"""STA's rescaling `h + γ · (h − μ) / σ` (AdaIN with a learned γ) and the token mean it uses (DESIGN §3.5)."""

from __future__ import annotations

import torch


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
