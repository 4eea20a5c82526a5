"""STA's rescaling `h + γ · (h − μ) / σ` (AdaIN with a learned γ) and the token mean it uses (DESIGN §3.5).

Written for few passes over the [B, T, C] activations, which at a 64x64 latent cost more than the arithmetic:
without autograd the rescale works in place (one temporary); with autograd it is one autograd node whose
backward is the closed-form instance-norm gradient (one temporary) instead of the six nodes of the formula.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


def mean_row(x: torch.Tensor) -> torch.Tensor:
    """[B, 1, T] filled with 1/T for x [B, T, C]: `torch.bmm(mean_row(x), x)` is the mean over T."""
    return x.new_full((x.shape[0], 1, x.shape[1]), 1.0 / x.shape[1])


def token_mean(x: torch.Tensor, row: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over dim 1 of x [B, T, C] -> [B, 1, C], as a batched matmul with a 1/T row (`row`, made if not
    given): on CPU several times faster than `mean` / `var_mean` over a non-innermost dimension."""
    return torch.bmm(mean_row(x) if row is None else row, x)


def adain_rescale(
    h: torch.Tensor, gamma: torch.Tensor, eps: float, row: torch.Tensor | None = None, *, in_place: bool = False
) -> torch.Tensor:
    """STA on h [B, T, C]: `h + γ · (h − μ) / sqrt(var + eps)`, with μ and the (biased) var per sample and channel
    over the T positions, γ [B, C]; `row` as in `token_mean`. `in_place=True` lets it overwrite h when no
    gradient is recorded (the caller's h is then the result).

    Equal to the paper's `(σ + γ)(h − μ)/σ + μ`, but exact (not rounded) when γ = 0. The variance is the mean of
    the centred squares (two passes: no cancellation in half precision). With T = 1, h − μ = 0: h comes back.
    """
    row = mean_row(h) if row is None else row
    if torch.is_grad_enabled() and (h.requires_grad or gamma.requires_grad):
        return _Rescale.apply(h, gamma, eps, row)
    mean = token_mean(h, row)
    centred = h - mean
    k = gamma.view(h.shape[0], 1, -1) * torch.rsqrt(token_mean(centred.square_(), row).add_(eps))
    # h + k (h − μ) = (1 + k) h − k μ: h is all the big pass needs, so the centred copy could be squared in place.
    return torch.addcmul(-(k * mean), h, 1 + k, out=h if in_place else None)


class _Rescale(torch.autograd.Function):
    """`h + γ ⊙ (h − μ) / σ` as one node. With n = (h − μ)/σ and k = γ/σ, the gradients are
    dL/dγ = Σ_t dy ⊙ n and dL/dh = dy + k ⊙ (dy − mean_t(dy) − n ⊙ mean_t(dy ⊙ n)) (instance norm's)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, gamma: torch.Tensor, eps: float, row: torch.Tensor) -> torch.Tensor:
        centred = h - token_mean(h, row)
        out = centred.square()
        inv_std = torch.rsqrt(token_mean(out, row).add_(eps))
        torch.addcmul(h, centred, gamma.view_as(inv_std) * inv_std, out=out)
        ctx.save_for_backward(centred, inv_std, gamma, row)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        centred, inv_std, gamma, row = ctx.saved_tensors
        work = grad * centred
        mean_grad_centred = token_mean(work, row)  # mean_t(dy ⊙ (h − μ)) = σ · mean_t(dy ⊙ n)
        grad_gamma = grad_h = None
        if ctx.needs_input_grad[1]:
            grad_gamma = (mean_grad_centred * inv_std).mul_(centred.shape[1]).view_as(gamma).to(gamma.dtype)
        if ctx.needs_input_grad[0]:
            k = gamma.view_as(inv_std) * inv_std
            # dy (1 + k) − k mean_t(dy) − k/σ² mean_t(dy ⊙ (h − μ)) ⊙ (h − μ), written into the temporary
            torch.addcmul(-(k * token_mean(grad, row)), grad, 1 + k, out=work)
            grad_h = work.addcmul_(centred, -(k * inv_std.square() * mean_grad_centred))
        return grad_h, grad_gamma, None, None
