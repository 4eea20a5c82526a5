"""Merging LoRA experts: each method's maths on hand-checkable factors, against dense references on random
experts (mixed ranks, module sets, a conv module), the self-checks, the recipe and report, and bad input."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch

from selma.experts.lora_expert import LoraExpert, LoraModule
from selma.merging import (
    METHODS,
    MergeConfig,
    check_linear_equals_sum,
    expert_fingerprint,
    merge_lora_experts,
    self_check_identity,
    sparsify,
)
from selma.merging.sparsify import drop_generator

F64 = torch.float64


def lora(down: list, up: list, alpha: float) -> LoraModule:
    return LoraModule(down=torch.tensor(down, dtype=F64), up=torch.tensor(up, dtype=F64), alpha=alpha)


def full(delta: list) -> LoraModule:
    """A rank-n LoRA whose ΔW is exactly `delta` (n×n): A = I, B = delta, alpha = n."""
    n = len(delta)
    return lora(torch.eye(n, dtype=F64).tolist(), delta, alpha=float(n))


def deltas(expert: LoraExpert) -> dict[str, torch.Tensor]:
    return {name: module.delta(F64) for name, module in expert.modules.items()}


def random_expert(seed: int, rank: int, shapes: dict[str, tuple], skill: str | None = None, dtype=F64) -> LoraExpert:
    """Random factors (B not zero, unlike a fresh LoRA) for modules of ΔW shape (out, in) or (out, in, kh, kw)."""
    gen = torch.Generator().manual_seed(seed)
    modules = {}
    for name, (out, *kernel_in) in shapes.items():
        down = torch.randn(rank, *kernel_in, generator=gen, dtype=F64)
        up = torch.randn(out, rank, *([1, 1] if len(kernel_in) == 3 else []), generator=gen, dtype=F64)
        modules[name] = LoraModule(down.to(dtype), up.to(dtype), alpha=rank / 2)
    return LoraExpert(modules, {"skill": skill} if skill else {})


Q, K, CONV = "blk.attn1.to_q", "blk.attn2.to_k", "mid.conv"
SHAPES = {Q: (16, 16), K: (16, 12), CONV: (6, 4, 3, 3)}


@pytest.fixture
def mixed() -> list[LoraExpert]:
    """Three experts of ranks 2, 3, 5 adapting overlapping module sets (one a 3x3 conv)."""
    return [
        random_expert(1, 2, {Q: SHAPES[Q], K: SHAPES[K]}, "counting"),
        random_expert(2, 3, {K: SHAPES[K], CONV: SHAPES[CONV]}, "spatial"),
        random_expert(3, 5, SHAPES, "text"),
    ]


def dense_sum(experts: list[LoraExpert], weights: list[float]) -> dict[str, torch.Tensor]:
    total: dict[str, torch.Tensor] = {}
    for weight, expert in zip(weights, experts, strict=True):
        for name, delta in deltas(expert).items():
            total[name] = total.get(name, 0) + weight * delta
    return total


def truncated(matrix: torch.Tensor, rank: int) -> tuple[torch.Tensor, float, float]:
    """Dense reference: best rank-`rank` approximation, energy kept, relative error."""
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    energy = (s[:rank] ** 2).sum() / (s**2).sum()
    return u[:, :rank] @ torch.diag(s[:rank]) @ vh[:rank], energy.item(), math.sqrt(1 - energy.item())


# --- hand-checkable maths ---------------------------------------------------------------------------------

# ΔW_1 = B_1 A_1 · 2/2 = [[1, 2], [3, 4]];  ΔW_2 = B_2 A_2 · 0.5/1 = [[2, 2], [0, 0]]
HAND = [
    LoraExpert({"m": lora([[1, 0], [0, 1]], [[1, 2], [3, 4]], alpha=2.0)}, {"skill": "counting"}),
    LoraExpert({"m": lora([[1, 1]], [[4], [0]], alpha=0.5)}, {"skill": "spatial"}),
]


def test_linear_is_the_exact_weighted_average_as_stacked_factors():
    merged = merge_lora_experts(HAND, MergeConfig("linear")).expert.modules["m"]
    assert merged.rank == 3 and merged.alpha == 3.0  # scale 1
    # weights 1/2 and scales 1 and 0.5 folded into the up-projections; the down-projections stacked
    assert merged.up.tolist() == [[0.5, 1.0, 1.0], [1.5, 2.0, 0.0]]
    assert merged.down.tolist() == [[1, 0], [0, 1], [1, 1]]
    assert merged.delta(F64).tolist() == [[1.5, 2.0], [1.5, 2.0]]
    other = merge_lora_experts(HAND, MergeConfig("linear", weights=[1.0, -1.0])).expert.modules["m"]
    assert other.delta(F64).tolist() == [[-1.0, 0.0], [3.0, 4.0]]


def test_cat_stacks_the_experts_at_weight_one_by_default():
    merged = merge_lora_experts(HAND, MergeConfig("cat")).expert.modules["m"]
    assert merged.rank == 3
    assert merged.delta(F64).tolist() == [[3.0, 4.0], [3.0, 4.0]]


def test_peft_linear_merge_is_not_the_average_of_the_updates():
    """PEFT's `linear` averages A and B separately (with √w on each), which adds cross terms B_a A_b."""
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        torch.nn.Sequential(torch.nn.Linear(2, 2, bias=False)), LoraConfig(r=1, lora_alpha=1, target_modules=["0"])
    )
    model.add_adapter("b", LoraConfig(r=1, lora_alpha=1, target_modules=["0"]))
    layer = model.base_model.model[0]
    factors = {"default": ([[1.0, 0.0]], [[1.0], [0.0]]), "b": ([[0.0, 1.0]], [[0.0], [1.0]])}
    with torch.no_grad():
        for name, (down, up) in factors.items():
            layer.lora_A[name].weight.copy_(torch.tensor(down))
            layer.lora_B[name].weight.copy_(torch.tensor(up))
    model.add_weighted_adapter(["default", "b"], [0.5, 0.5], "peft_linear", combination_type="linear")
    # ΔW_a = [[1, 0], [0, 0]], ΔW_b = [[0, 0], [0, 1]]: their average is diag(0.5, 0.5)
    peft_delta = layer.get_delta_weight("peft_linear").double()
    assert torch.allclose(peft_delta, torch.full((2, 2), 0.5, dtype=F64))  # cross terms: off the diagonal
    experts = [LoraExpert({"0": lora(down, up, alpha=1.0)}) for down, up in factors.values()]
    ours = merge_lora_experts(experts, MergeConfig("linear")).expert.modules["0"]
    assert ours.delta(F64).tolist() == [[0.5, 0.0], [0.0, 0.5]]


def test_svd_keeps_the_largest_direction_and_reports_its_energy():
    # ΔW_1 = [[3, 0], [0, 0]], ΔW_2 = [[0, 0], [0, 1]]: σ = 3, 1
    experts = [
        LoraExpert({"m": lora([[1, 0]], [[3], [0]], alpha=1.0)}),
        LoraExpert({"m": lora([[0, 1]], [[0], [1]], alpha=1.0)}),
    ]
    result = merge_lora_experts(experts, MergeConfig("svd", weights=[1, 1], rank=1))
    module, row = result.expert.modules["m"], result.report[0]
    assert module.rank == 1 and module.alpha == 1.0
    assert torch.allclose(module.delta(F64), torch.tensor([[3.0, 0.0], [0.0, 0.0]], dtype=F64))
    assert row.energy_kept == pytest.approx(9 / 10) and row.relative_error == pytest.approx(math.sqrt(1 / 10))
    exact = merge_lora_experts(experts, MergeConfig("svd", weights=[1, 1], rank=2))
    assert torch.allclose(exact.expert.modules["m"].delta(F64), torch.eye(2, dtype=F64) * torch.tensor([3.0, 1.0]))
    assert exact.report[0].energy_kept == pytest.approx(1.0) and exact.report[0].relative_error == pytest.approx(0.0)


PRUNE_HAND = [LoraExpert({"m": full([[4, -1], [2, 0.5]])}), LoraExpert({"m": full([[-3, 2], [1, -0.2]])})]


def test_ties_trims_elects_sign_and_takes_the_disjoint_mean():
    # trimmed to the top half: [[4, 0], [2, 0]] and [[-3, 2], [0, 0]]; summed mass [[1, 2], [2, 0]] elects
    # +,+,+,+; the mean over agreeing non-zeros: (4), (2), (2), none
    merged = merge_lora_experts(PRUNE_HAND, MergeConfig("ties", density=0.5)).expert.modules["m"]
    assert torch.allclose(merged.delta(F64), torch.tensor([[4.0, 2.0], [2.0, 0.0]], dtype=F64))


def test_magnitude_keeps_the_top_entries_then_averages():
    merged = merge_lora_experts(PRUNE_HAND, MergeConfig("magnitude", density=0.5)).expert.modules["m"]
    assert torch.allclose(merged.delta(F64), torch.tensor([[0.5, 1.0], [1.0, 0.0]], dtype=F64))


def test_dare_at_density_one_is_the_linear_merge():
    merged = merge_lora_experts(PRUNE_HAND, MergeConfig("dare", density=1.0)).expert.modules["m"]
    assert torch.allclose(merged.delta(F64), torch.tensor([[0.5, 0.5], [1.5, 0.15]], dtype=F64))


# --- random experts against dense references ---------------------------------------------------------------


def test_linear_and_cat_are_exact_on_mixed_ranks_and_module_sets(mixed):
    linear = merge_lora_experts(mixed, MergeConfig("linear")).expert
    assert linear.ranks == {Q: 2 + 5, K: 2 + 3 + 5, CONV: 3 + 5}
    assert linear.modules[CONV].down.shape == (8, 4, 3, 3) and linear.modules[CONV].up.shape == (6, 8, 1, 1)
    reference = dense_sum(mixed, [1 / 3] * 3)
    for name, delta in deltas(linear).items():
        assert torch.allclose(delta, reference[name], rtol=1e-12, atol=1e-12), name
    # a module two experts lack gets only the third's share: missing means zero, weights are not renormalised
    assert torch.allclose(deltas(linear)[Q], (deltas(mixed[0])[Q] + deltas(mixed[2])[Q]) / 3)
    assert check_linear_equals_sum(mixed, None, linear).passed
    cat = merge_lora_experts(mixed, MergeConfig("cat", weights=[0.5, 2.0, -1.0])).expert
    assert check_linear_equals_sum(mixed, [0.5, 2.0, -1.0], cat).passed


def test_svd_from_factors_equals_the_truncated_svd_of_the_dense_sum(mixed):
    weights = [0.7, -0.4, 1.2]
    result = merge_lora_experts(mixed, MergeConfig("svd", weights=weights, rank=4))
    reference = dense_sum(mixed, weights)
    for row in result.report:
        best, energy, error = truncated(reference[row.module], 4)
        assert row.rank == 4
        assert torch.allclose(result.expert.modules[row.module].delta(F64), best, atol=1e-10), row.module
        assert row.energy_kept == pytest.approx(energy, abs=1e-12)
        assert row.relative_error == pytest.approx(error, abs=1e-9)


def test_svd_rank_beyond_the_inputs_is_exact_at_their_total_rank():
    experts = [random_expert(4, 1, {"m": (6, 6)}), random_expert(5, 2, {"m": (6, 6)})]
    result = merge_lora_experts(experts, MergeConfig("svd", rank=5))
    assert result.report[0].rank == 3 and result.report[0].energy_kept == pytest.approx(1.0)
    assert check_linear_equals_sum(experts, None, result.expert).passed


def reference_top(delta: torch.Tensor, density: float) -> torch.Tensor:
    keep = int(density * delta.numel())
    threshold = delta.abs().flatten().sort(descending=True).values[keep - 1]
    return torch.where(delta.abs() >= threshold, delta, torch.zeros_like(delta))


def reference_ties(deltas_: list[torch.Tensor], weights: list[float], density: float) -> torch.Tensor:
    trimmed = [w * reference_top(d, density) for w, d in zip(weights, deltas_, strict=True)]
    mass = sum(trimmed)
    out = torch.zeros_like(mass)
    for index in torch.cartesian_prod(*[torch.arange(n) for n in mass.shape]):
        index = tuple(index.tolist())
        sign = 1.0 if mass[index] >= 0 else -1.0
        agreeing = [t[index] for t in trimmed if t[index] * sign > 0]
        out[index] = sum(agreeing) / len(agreeing) if agreeing else 0.0
    return out


def reference_dare(deltas_, weights, density, module, indices, seed):
    total = 0
    for w, d, k in zip(weights, deltas_, indices, strict=True):
        keep = torch.bernoulli(torch.full_like(d, density), generator=drop_generator(seed, module, k))
        total = total + w * torch.where(keep > 0, d / density, torch.zeros_like(d))
    return total


@pytest.mark.parametrize("method", ["ties", "dare", "magnitude"])
def test_pruning_methods_match_dense_references(mixed, method):
    weights, density = [0.5, 1.5, -1.0], 0.4
    result = merge_lora_experts(mixed, MergeConfig(method, weights=weights, density=density, seed=7))
    for row in result.report:
        present = [k for k, e in enumerate(mixed) if row.module in e.modules]
        ds = [mixed[k].modules[row.module].delta(F64) for k in present]
        ws = [weights[k] for k in present]
        if method == "ties":
            dense = reference_ties(ds, ws, density)
        elif method == "dare":
            dense = reference_dare(ds, ws, density, row.module, present, seed=7)
        else:
            dense = sum(w * reference_top(d, density) for w, d in zip(ws, ds, strict=True))
        # default rank: the largest input rank on the module
        assert row.rank == max(mixed[k].modules[row.module].rank for k in present)
        best, energy, _ = truncated(dense, row.rank)
        assert torch.allclose(result.expert.modules[row.module].delta(F64), best, atol=1e-9), row.module
        assert row.energy_kept == pytest.approx(energy, abs=1e-12)


def test_sparsify_steps_at_full_rank():
    gen = torch.Generator().manual_seed(0)
    ds = [torch.randn(7, 9, generator=gen, dtype=F64) for _ in range(3)]
    assert torch.equal(sparsify.ties(ds, [1.0, 0.5, 2.0], 0.3), reference_ties(ds, [1.0, 0.5, 2.0], 0.3))
    assert int((sparsify.trim(ds[0], 0.3) != 0).sum()) == int(0.3 * 63)
    dropped = sparsify.random_drop(ds[0], 0.25, torch.Generator().manual_seed(1))
    kept = dropped != 0
    assert torch.allclose(dropped[kept], ds[0][kept] / 0.25) and 0 < int(kept.sum()) < 63


def test_dare_is_seeded_per_module_and_expert(mixed):
    def merge(experts, seed):
        return deltas(merge_lora_experts(experts, MergeConfig("dare", density=0.5, seed=seed)).expert)

    first, again, other = merge(mixed, 3), merge(mixed, 3), merge(mixed, 4)
    assert all(torch.equal(first[n], again[n]) for n in first)
    assert not torch.allclose(first[K], other[K])
    # a module's drops do not depend on which other modules are merged
    only_k = [LoraExpert({K: e.modules[K]}) for e in mixed]
    assert torch.equal(merge(only_k, 3)[K], first[K])


# --- the self-checks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_identity_self_check_passes_for_every_method(dtype):
    expert = random_expert(6, 3, SHAPES, "counting", dtype=dtype)
    results = self_check_identity(expert)
    assert [r.name for r in results] == [f"identity via {m}" for m in METHODS]
    assert all(r.passed for r in results), [str(r) for r in results]


def test_linear_check_catches_a_wrong_merge(mixed):
    lossy = merge_lora_experts(mixed, MergeConfig("svd", rank=1)).expert
    check = check_linear_equals_sum(mixed, None, lossy)
    assert not check.passed and check.worst_module in SHAPES and check.max_relative_error > 0.1
    partial = LoraExpert(dict(list(merge_lora_experts(mixed, MergeConfig()).expert.modules.items())[:2]))
    check = check_linear_equals_sum(mixed, None, partial)
    assert not check.passed and "1 module(s) missing from the merge, e.g. mid.conv" in str(check)


def test_tiny_unet_experts_merge_and_self_check():
    from selma.testing.tiny_models import build_tiny_sd

    unet = build_tiny_sd().unet
    targets = ("to_q", "to_k", "to_v", "to_out.0")
    shapes = {n: tuple(m.weight.shape) for n, m in unet.named_modules() if n.endswith(targets)}
    names = list(shapes)
    experts = [
        random_expert(7, 4, shapes, "counting", dtype=torch.float32),
        random_expert(8, 8, {n: shapes[n] for n in names[::2]}, "spatial", dtype=torch.float32),
    ]
    linear = merge_lora_experts(experts, MergeConfig("linear")).expert
    assert check_linear_equals_sum(experts, None, linear).passed
    assert all(r.passed for r in self_check_identity(experts[1]))
    for method in ("svd", "ties", "dare", "magnitude"):
        result = merge_lora_experts(experts, MergeConfig(method, rank=8))
        # from the factors, a module only the rank-4 expert adapts is exact at rank 4; pruning fills rank 8
        shared = set(names[::2])
        assert result.expert.ranks == {n: 8 if method != "svd" or n in shared else 4 for n in names}
        assert all(0.0 < r.energy_kept <= 1.0 + 1e-9 for r in result.report)
    with pytest.raises(ValueError, match=r"rank=40 is larger than possible .* at most 32; use rank <= 32"):
        merge_lora_experts(experts, MergeConfig("svd", rank=40))


# --- recipe, metadata, report, dtype, progress ------------------------------------------------------------


def test_recipe_and_metadata_describe_the_merge(mixed, caplog):
    for expert in mixed:
        expert.metadata["base_model"] = "sd15-abc"
    result = merge_lora_experts(mixed, MergeConfig("ties", density=0.3))
    recipe = json.loads(json.dumps(result.expert.metadata["merge"]))
    assert recipe["method"] == "ties" and recipe["weights"] == [1.0, 1.0, 1.0] and recipe["density"] == 0.3
    assert recipe["rank"] is None and recipe["exact"] is False and "seed" not in recipe
    assert [i["skill"] for i in recipe["inputs"]] == ["counting", "spatial", "text"]
    assert [i["fingerprint"] for i in recipe["inputs"]] == [expert_fingerprint(e) for e in mixed]
    assert [i["rank"] for i in recipe["inputs"]] == [2, 3, 5]
    assert result.expert.metadata["skill"] == "counting+spatial+text"
    assert result.expert.metadata["base_model"] == "sd15-abc"
    mixed[2].metadata["base_model"] = "sdxl-def"
    with caplog.at_level(logging.WARNING, logger="selma.merging"):
        other = merge_lora_experts(mixed, MergeConfig("linear"))
    assert "base_model" not in other.expert.metadata and "'sdxl-def'" in caplog.text
    assert other.recipe["exact"] is True and "density" not in other.recipe


def test_fingerprint_follows_the_tensors(mixed):
    clone = LoraExpert({n: LoraModule(m.down.clone(), m.up.clone(), m.alpha) for n, m in mixed[0].modules.items()})
    assert expert_fingerprint(clone) == expert_fingerprint(mixed[0])
    clone.modules[Q].up[0, 0] += 1e-9
    assert expert_fingerprint(clone) != expert_fingerprint(mixed[0])


def test_report_renders_as_text_and_json(mixed):
    result = merge_lora_experts(mixed, MergeConfig("svd", rank=2))
    text = result.report_text()
    assert text.splitlines()[0] == "merge: svd of 3 expert(s), weights [0.333333, 0.333333, 0.333333], rank 2"
    assert all(name in text for name in SHAPES) and "energy kept: min" in text
    data = json.loads(json.dumps(result.report_json()))
    assert data["method"] == "svd" and data["summary"]["modules"] == 3 and data["summary"]["rank_max"] == 2
    conv = next(m for m in data["modules"] if m["module"] == CONV)
    assert conv["shape"] == [6, 36] and conv["experts"] == 2 and conv["rank"] == 2
    assert conv["energy_kept"] == pytest.approx(1 - conv["relative_error"] ** 2)


def test_half_precision_in_half_precision_out_with_scale_one():
    experts = [random_expert(9, 4, SHAPES, dtype=torch.float16), random_expert(10, 2, SHAPES, dtype=torch.float16)]
    for method in METHODS:
        for module in merge_lora_experts(experts, MergeConfig(method)).expert.modules.values():
            assert module.down.dtype == module.up.dtype == torch.float16 and module.scale == 1.0


def test_progress_is_reported_per_module(mixed):
    calls = []
    merge_lora_experts(mixed, MergeConfig("svd"), on_progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "average"}, r"method='average' is unknown; use one of linear, cat, svd"),
        ({"weights": []}, r"weights=\[\] must be a non-empty list of numbers"),
        ({"weights": [1.0, float("nan")]}, r"holds nan; every weight must be a finite number"),
        ({"rank": 0}, r"rank=0 must be a whole number >= 1"),
        ({"method": "cat", "rank": 8}, r"rank=8 cannot be used with method 'cat'.*use 'svd'"),
        ({"density": 0.0}, r"density=0.0 must be in \(0, 1\]"),
        ({"seed": -1}, r"seed=-1 must be a whole number in \[0, 2\*\*63\)"),
    ],
)
def test_config_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MergeConfig(**kwargs)


def test_empty_list_is_rejected():
    with pytest.raises(ValueError, match="no experts to merge"):
        merge_lora_experts([], MergeConfig())


def test_weights_count_must_match(mixed):
    with pytest.raises(ValueError, match=r"weights has 2 value\(s\) but 3 expert\(s\) were given"):
        merge_lora_experts(mixed, MergeConfig(weights=[0.5, 0.5]))


def test_non_experts_are_rejected(mixed):
    with pytest.raises(TypeError, match=r"experts\[1\] is a dict, not a LoraExpert"):
        merge_lora_experts([mixed[0], {}], MergeConfig())


def test_an_expert_without_modules_is_rejected(mixed):
    with pytest.raises(ValueError, match=r"experts\[1\] \(expert 1\) adapts no modules"):
        merge_lora_experts([mixed[0], LoraExpert({})], MergeConfig())


def test_experts_for_different_base_models_are_rejected_naming_module_and_shapes(mixed):
    other = random_expert(11, 2, {K: (16, 24)}, "sdxl")
    with pytest.raises(
        ValueError,
        match=r"experts disagree on module 'blk.attn2.to_k': expert 0 \(skill 'counting'\) has down \[2, 12\] / "
        r"up \[16, 2\] \(ΔW 16x12\) but expert 3 \(skill 'sdxl'\) has down \[2, 24\] / up \[16, 2\] \(ΔW 16x24\)",
    ):
        merge_lora_experts([*mixed, other], MergeConfig(weights=[1, 1, 1, 1]))


def test_a_rank_larger_than_possible_is_rejected(mixed):
    with pytest.raises(ValueError, match=r"rank=7 is larger than possible for module 'mid.conv': its ΔW is 6x36"):
        merge_lora_experts(mixed, MergeConfig("ties", rank=7))
