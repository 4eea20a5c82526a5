"""The exact truncation from the factors (selma.merging.low_rank): both routes (factored, R well below
min(out, in): QR + the R×R Gram core; dense otherwise: the SVD of ΔW) against a dense float64 SVD, on
ill-conditioned, rank-deficient, zero and half-precision inputs."""

from __future__ import annotations

import math

import pytest
import torch

from selma.experts.lora_expert import LoraExpert, LoraModule
from selma.merging import MergeConfig, merge_lora_experts
from selma.merging.low_rank import truncate_dense, truncate_from_factors

F64 = torch.float64


def best_rank(matrix: torch.Tensor, rank: int) -> tuple[torch.Tensor, float, float]:
    """Dense float64 reference: the best rank-`rank` approximation, the energy kept, the relative error."""
    u, s, vh = torch.linalg.svd(matrix.double(), full_matrices=False)
    energy = s.square()
    kept = (energy[:rank].sum() / energy.sum()).item()
    return (u[:, :rank] * s[:rank]) @ vh[:rank], kept, math.sqrt(energy[rank:].sum().item() / energy.sum().item())


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return (torch.linalg.matrix_norm(a.double() - b.double()) / torch.linalg.matrix_norm(b.double())).item()


def random_factors(out: int, inner: int, in_: int, seed: int = 0, dtype=F64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(out, inner, generator=gen, dtype=F64).to(dtype), torch.randn(
        inner, in_, generator=gen, dtype=F64
    ).to(dtype)


def factors_with_spectrum(out: int, in_: int, inner: int, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[out, inner] @ [inner, in] factors whose product has exactly the singular values `sigma`, mixed by a random
    rotation and unbalanced column by column, so neither factor is itself orthogonal."""
    gen = torch.Generator().manual_seed(0)
    u = torch.linalg.qr(torch.randn(out, sigma.numel(), generator=gen, dtype=F64)).Q
    v = torch.linalg.qr(torch.randn(in_, sigma.numel(), generator=gen, dtype=F64)).Q
    mix = torch.linalg.qr(torch.randn(inner, inner, generator=gen, dtype=F64)).Q[: sigma.numel()]  # P Pᵀ = I
    scale = torch.logspace(0, 1, inner, dtype=F64)
    return (u * sigma) @ mix * scale, (mix.T / scale[:, None]) @ v.T


# (out, in, R): the factored route (R well below min), the dense route wide (out <= in), tall (out > in), square
SHAPES = {
    "core": (40, 30, 12),
    "core-wide": (20, 50, 9),
    "gram-rows": (16, 40, 24),
    "gram-columns": (48, 20, 24),
    "gram-square": (24, 24, 24),
}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("rank", [1, 5, 100])
def test_truncation_equals_the_dense_svd(shape, rank):
    out, in_, inner = shape
    up, down = random_factors(out, inner, in_)
    update = truncate_from_factors(up, down, rank)
    k = min(rank, out, in_, inner)
    best, energy, error = best_rank(up @ down, k)
    assert update.up.shape == (out, k) and update.down.shape == (k, in_)
    assert relative(update.up @ update.down, best) < 1e-12
    assert update.energy_kept == pytest.approx(energy, abs=1e-13)
    assert update.relative_error == pytest.approx(error, abs=1e-7)
    # √σ on both sides: each component's up column and down row have the same norm
    assert torch.allclose(update.up.norm(dim=0), update.down.norm(dim=1), rtol=1e-10)


@pytest.mark.parametrize("shape", [(60, 50, 24), (24, 60, 30)], ids=["factored", "dense"])
@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["fp32", "fp64"])
def test_ill_conditioned_sums_keep_their_small_singular_directions(shape, dtype):
    """σ from 1 down to 1e-6 (κ = 1e6, κ² = 1e12: a float32 Gram matrix would lose everything below ~3e-4).

    The factored route keeps every direction at its own relative precision (float64 Gram core); the dense route
    (float32 SVD of the float32 ΔW, as kohya's svd_merge) keeps them to the working precision relative to σ_1."""
    out, in_, inner = shape
    count = min(shape)
    sigma = torch.logspace(0, -6, count, dtype=F64)
    up, down = (t.to(dtype) for t in factors_with_spectrum(out, in_, inner, sigma))
    exact = up.double() @ down.double()  # what the stored factors hold, exactly
    rank = count - 4  # keeps σ down to ~1e-5
    update = truncate_from_factors(up, down, rank)
    best, energy, error = best_rank(exact, rank)
    # float32: the inputs' own precision. float64: a Gram matrix costs the factor σ_1/σ_k = 1e5 over eps64.
    tolerance = 1e-6 if dtype == torch.float32 else 1e-10
    assert relative(update.up @ update.down, best) < tolerance
    kept = torch.linalg.svdvals(update.up @ update.down.to(update.up.dtype))[rank - 1]
    reference = torch.linalg.svdvals(exact)[rank - 1]
    if dtype == torch.float32 and shape == (24, 60, 30):  # dense route in float32: absolute, relative to σ_1 = 1
        assert kept.item() == pytest.approx(reference.item(), abs=1e-7)
        assert update.energy_kept == pytest.approx(energy, abs=1e-7)
        assert update.relative_error == pytest.approx(error, abs=1e-6)
        return
    # the smallest kept direction comes out at its own relative precision, not at the largest one's
    assert kept.item() == pytest.approx(reference.item(), rel=1e-4 if dtype == torch.float32 else 1e-9)
    assert update.energy_kept == pytest.approx(energy, abs=1e-12)
    assert update.relative_error == pytest.approx(error, rel=1e-3)


def test_each_module_takes_the_cheaper_route():
    """Factored when the stacked rank is well below min(out, in), dense otherwise; both give the best rank-k."""
    from selma.merging.low_rank import _factored_is_cheaper

    assert _factored_is_cheaper(320, 320, 160) and _factored_is_cheaper(640, 640, 256)
    assert not _factored_is_cheaper(320, 320, 300)  # the QR + R³ core would cost more than ΔW and its SVD
    assert not _factored_is_cheaper(640, 640, 640) and not _factored_is_cheaper(320, 768, 320)  # R >= min(out, in)


@pytest.mark.parametrize("shape", [(40, 30, 12), (16, 40, 24)], ids=["core", "gram"])
def test_rank_deficient_sums_are_reproduced_exactly(shape):
    """The same expert stacked twice: stacked rank R, true rank R/2; asking for R keeps zero directions."""
    out, in_, inner = shape
    up, down = random_factors(out, inner // 2, in_, seed=3)
    up, down = torch.cat([up, 0.5 * up], dim=1), torch.cat([down, down])
    exact = up @ down
    full = truncate_from_factors(up, down, inner)
    assert torch.isfinite(full.up).all() and torch.isfinite(full.down).all()
    assert relative(full.up @ full.down, exact) < 1e-12
    assert full.energy_kept == pytest.approx(1.0) and full.relative_error < 1e-6
    half = truncate_from_factors(up, down, inner // 2)  # the true rank: still exact
    assert relative(half.up @ half.down, exact) < 1e-12 and half.relative_error < 1e-6


@pytest.mark.parametrize("shape", [(40, 30, 12), (16, 40, 24)], ids=["core", "gram"])
def test_a_zero_sum_gives_zero_factors_not_nan(shape):
    out, in_, inner = shape
    up, down = random_factors(out, inner, in_)
    for zero_up, zero_down in ((torch.zeros_like(up), down), (up, torch.zeros_like(down))):
        update = truncate_from_factors(zero_up, zero_down, 4)
        assert update.rank == 4 and update.energy_kept == 1.0 and update.relative_error == 0.0
        assert torch.count_nonzero(update.up) == 0 and torch.count_nonzero(update.down) == 0
    # +B A − B A: cancels to rounding noise, which stays finite and negligible
    cancel = truncate_from_factors(torch.cat([up, -up], dim=1), torch.cat([down, down]), 4)
    assert torch.isfinite(cancel.up).all() and torch.isfinite(cancel.down).all()
    assert (cancel.up @ cancel.down).abs().max() < 1e-12


def test_truncate_dense_takes_the_same_route_on_both_orientations():
    gen = torch.Generator().manual_seed(5)
    for matrix in (torch.randn(9, 14, generator=gen, dtype=F64), torch.randn(14, 9, generator=gen, dtype=F64)):
        update = truncate_dense(matrix, 3)
        best, energy, _ = best_rank(matrix, 3)
        assert relative(update.up @ update.down, best) < 1e-12 and update.energy_kept == pytest.approx(energy)


def fp16_expert(seed: int, rank: int, shapes: dict[str, tuple[int, int]], scale: float) -> LoraExpert:
    gen = torch.Generator().manual_seed(seed)
    modules = {
        name: LoraModule(
            down=(scale * torch.randn(rank, in_, generator=gen)).half(),
            up=(scale * torch.randn(out, rank, generator=gen)).half(),
            alpha=float(rank),
        )
        for name, (out, in_) in shapes.items()
    }
    return LoraExpert(modules)


FP16_SHAPES = {"core": (48, 40), "gram": (12, 40)}  # stacked rank 16: < 40 and >= 12


@pytest.mark.parametrize("scale", [0.1, 100.0], ids=["small", "product-beyond-fp16"])
def test_half_precision_experts_merge_accurately_and_stay_finite(scale):
    """fp16 factors (some whose ΔW entries exceed fp16's 65504) -> fp16 factors of the truncated sum."""
    experts = [fp16_expert(1, 8, FP16_SHAPES, scale), fp16_expert(2, 8, FP16_SHAPES, scale)]
    result = merge_lora_experts(experts, MergeConfig("svd", rank=6))
    for name, module in result.expert.modules.items():
        assert module.up.dtype == module.down.dtype == torch.float16
        assert torch.isfinite(module.up).all() and torch.isfinite(module.down).all()
        exact = sum(0.5 * e.modules[name].delta(F64) for e in experts)
        best, _, _ = best_rank(exact, 6)
        assert relative(module.delta(F64), best) < 2e-3, name  # fp16 rounding of the result's factors
    if scale > 1:
        assert max(e.modules["gram"].delta(F64).abs().max().item() for e in experts) > 65504
