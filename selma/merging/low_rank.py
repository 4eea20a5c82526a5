"""Low-rank algebra on LoRA factors: stack experts into one exact product, and truncate a sum to a rank.

A sum of LoRA updates Σ_k w_k s_k B_k A_k is the product of stacked factors `up @ down` with
`up = [w_1 s_1 B_1 | … | w_K s_K B_K]` and `down = [A_1; …; A_K]`. Its best rank-k approximation (in the
Frobenius norm) comes from these factors alone: `up = Q_u R_u`, `downᵀ = Q_d R_d` (QR), the SVD of the
small core `R_u R_dᵀ = U_c Σ V_cᵀ`, and `ΔW = (Q_u U_c) Σ (Q_d V_c)ᵀ`. That costs O((out + in) R²) instead
of O(out · in · min(out, in)) for the SVD of the dense out×in matrix, a gain while R < min(out, in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class LowRankUpdate:
    """An update as factors `up @ down`, and how much of the target matrix it keeps (all, if exact)."""

    up: torch.Tensor  # [out, rank]
    down: torch.Tensor  # [rank, in]
    energy_kept: float  # Σ kept σ² / Σ σ² (1.0 for a zero matrix)
    relative_error: float  # ‖ΔW − up @ down‖_F / ‖ΔW‖_F (0.0 for a zero matrix)

    @property
    def rank(self) -> int:
        return self.down.shape[0]


def stack_factors(
    ups: list[torch.Tensor], downs: list[torch.Tensor], coefficients: list[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(up, down)` with `up @ down == Σ_k coefficients[k] · ups[k] @ downs[k]` exactly.

    ups[k] is [out, r_k], downs[k] is [r_k, in]; each coefficient (weight × alpha/r) is folded into the up
    factor, so the result needs scale 1 (alpha = rank Σ r_k).
    """
    up = torch.cat([c * u for c, u in zip(coefficients, ups, strict=True)], dim=1)
    down = torch.cat(downs, dim=0)
    return up, down


def truncate_from_factors(up: torch.Tensor, down: torch.Tensor, rank: int) -> LowRankUpdate:
    """The best rank-`rank` approximation of `up @ down` [out, R] @ [R, in], from the factors.

    The out×in product is formed only when R >= min(out, in), where it is the smallest exact core. The
    rank of the result is `min(rank, out, in, R)`; beyond R the product is reproduced exactly.
    """
    inner = up.shape[1]
    if inner >= min(up.shape[0], down.shape[1]):
        # R >= min(out, in): ΔW may have full rank, so no core is smaller than ΔW itself; forming it and
        # taking its SVD is then the cheapest exact route (QR would only add work).
        return truncate_dense(up @ down, rank)
    q_up, r_up = torch.linalg.qr(up)  # [out, R], [R, R]
    q_down, r_down = torch.linalg.qr(down.T)  # [in, R], [R, R]
    u_core, sigma, vh_core = torch.linalg.svd(r_up @ r_down.T)  # the R×R core
    k = min(rank, sigma.numel())
    return _balanced(q_up @ u_core[:, :k], sigma, vh_core[:k] @ q_down.T, k)


def truncate_dense(matrix: torch.Tensor, rank: int) -> LowRankUpdate:
    """The best rank-`rank` approximation of a dense [out, in] matrix (for the pruning methods)."""
    u, sigma, vh = torch.linalg.svd(matrix, full_matrices=False)
    k = min(rank, sigma.numel())
    return _balanced(u[:, :k], sigma, vh[:k], k)


def _balanced(left: torch.Tensor, sigma: torch.Tensor, right: torch.Tensor, k: int) -> LowRankUpdate:
    # √σ on each side keeps both factors at the same scale, so neither over- nor underflows in fp16.
    root = sigma[:k].sqrt()
    energy = sigma.double().square()
    total, kept, tail = energy.sum().item(), energy[:k].sum().item(), energy[k:].sum().item()
    if total == 0.0:
        return LowRankUpdate(left * root, root[:, None] * right, 1.0, 0.0)
    return LowRankUpdate(left * root, root[:, None] * right, kept / total, math.sqrt(tail / total))
