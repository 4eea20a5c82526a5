"""Low-rank algebra on LoRA factors: stack experts into one exact product, and truncate a sum to a rank.

A sum of LoRA updates Σ_k w_k s_k B_k A_k is the product of stacked factors `up @ down` with
`up = [w_1 s_1 B_1 | … | w_K s_K B_K]` and `down = [A_1; …; A_K]` (stacked rank R = Σ r_k). Its best rank-k
approximation (in the Frobenius norm) comes by one of two exact routes, chosen per module by their cost:

- factored, when R is well below min(out, in): `up = Q T` (QR), so ΔW = Q N with N = T @ down [R, in]; the
  eigenvectors Z of the R×R Gram matrix N Nᵀ with the largest eigenvalues σ² give the left singular vectors Q Z,
  and Zᵀ N = Σ Vᵀ. Cost ~ (out + in)·R² + R³. Squaring the singular values squares their spread, so the Gram
  matrix and its eigendecomposition run in float64 (a float32 one would lose every σ below ~3e-4·σ_1); the QR
  runs in the working dtype, where it is backward stable. Each direction comes out at its own relative precision.
- dense, otherwise (R near or above min(out, in)): ΔW formed and SVD'd in the working dtype (float32 at least),
  what kohya's svd_merge does. Cost ~ out·in·R + min(out, in)²·max(out, in). Precision: the working dtype's,
  relative to σ_1 (the precision ΔW itself has in that dtype).

`_factored_is_cheaper` compares the two costs (their flop counts, which track the measured times on CPU within
~20%: bench/merge.py), so a merge is never much slower than the better route on any shape.
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
    """The best rank-`rank` approximation of `up @ down` [out, R] @ [R, in], by the cheaper exact route.

    The rank of the result is `min(rank, out, in, R)`; beyond R the product is reproduced exactly. The
    factors come back in float64 (factored route) or the working dtype (dense route); the caller casts them to
    the experts' dtype.
    """
    (out, inner), width = up.shape, down.shape[1]
    if not _factored_is_cheaper(out, width, inner):
        if up.dtype not in (torch.float32, torch.float64):  # half-precision experts: ΔW in float32
            up, down = up.float(), down.float()
        return truncate_dense(up @ down, rank)
    # Householder QR is backward stable in the working dtype (float32 for float32 experts, at half of
    # float64's cost); everything after it runs in float64.
    basis, upper = torch.linalg.qr(up)
    return _top_of_rows(basis, upper.double() @ down.double(), rank)


def _factored_is_cheaper(out: int, width: int, inner: int) -> bool:
    """Whether the QR + R×R core route costs less than forming ΔW and SVD'ing it (it needs R < min(out, in))."""
    shorter, longer = min(out, width), max(out, width)
    if inner >= shorter:
        return False
    return (out + width) * inner**2 + inner**3 < out * width * inner + shorter**2 * longer


def truncate_dense(matrix: torch.Tensor, rank: int) -> LowRankUpdate:
    """The best rank-`rank` approximation of a dense [out, in] matrix, by its SVD in the working dtype (float32
    for half-precision matrices)."""
    if matrix.dtype not in (torch.float32, torch.float64):
        matrix = matrix.float()
    left, sigma, right = torch.linalg.svd(matrix, full_matrices=False)
    k = min(rank, sigma.numel())
    # √σ on each side keeps both factors at the same scale, so neither over- nor underflows in fp16.
    root = sigma[:k].sqrt()
    energies = sigma.double().square()
    return _with_energy(left[:, :k] * root, root[:, None] * right[:k], energies, k)


def _top_of_rows(basis: torch.Tensor, rows: torch.Tensor, rank: int) -> LowRankUpdate:
    """The best rank-`rank` approximation of `basis @ rows`, from the eigendecomposition of `rows @ rows.T`.

    `basis` is [n, r] with orthonormal columns; `rows` is [r, in] in float64 with r <= in.
    The right side is recovered as `Zᵀ @ rows` (row i is σ_i v_iᵀ) instead of being divided by σ, so the
    result is the exact projection of the matrix onto its top left singular vectors, and a zero or
    rank-deficient ΔW yields zero factors (never a division by zero).
    """
    eigenvalues, vectors = torch.linalg.eigh(rows @ rows.T)  # ascending
    k = min(rank, eigenvalues.numel())
    top = vectors[:, -k:].flip(1)  # [r, k], largest σ first
    scaled_right = top.T @ rows  # [k, in]
    # Q is orthonormal to its own dtype's precision, so Q @ Z needs no more than that dtype.
    left = (basis @ top.to(basis.dtype)).double()
    # √σ on each side keeps both factors at the same scale, so neither over- nor underflows in fp16.
    root = torch.linalg.vector_norm(scaled_right, dim=1).sqrt()
    inverse = torch.where(root > 0, 1.0 / root.clamp(min=torch.finfo(root.dtype).tiny), 0.0)
    energies = eigenvalues.flip(0).clamp(min=0.0)  # rounding can leave zero eigenvalues slightly negative
    return _with_energy(left * root, inverse[:, None] * scaled_right, energies, k)


def _with_energy(up: torch.Tensor, down: torch.Tensor, energies: torch.Tensor, k: int) -> LowRankUpdate:
    """The update with its energy numbers, from every σ² of the target (largest first) and the kept count."""
    kept, tail = energies[:k].sum().item(), energies[k:].sum().item()
    total = kept + tail
    if total == 0.0:
        return LowRankUpdate(up, down, 1.0, 0.0)
    return LowRankUpdate(up, down, kept / total, math.sqrt(tail / total))
