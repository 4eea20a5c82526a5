"""Self-checks a merge can run on its own output, comparing dense ΔW's module by module.

- `self_check_identity(expert)`: merging one expert with weight 1 returns it (every method: the pruning
  ones at density 1, where they prune nothing; each module at its own rank).
- `check_linear_equals_sum(experts, weights, merged)`: the merged ΔW equals Σ w_k ΔW_k per module, i.e.
  applying the merge equals applying every expert at once with its weight.
- `run_self_checks(experts, config, merged)`: the ones that fit a merge (what `selma merge --check` runs).

`adapter_check.check_linear_against_adapters` checks the same on a diffusers UNet's output.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from ..experts.lora_expert import LoraExpert
from .config import METHODS, PRUNING_METHODS, MergeConfig
from .lora_merge import merge_lora_experts

# Relative Frobenius error allowed, by the factors' dtype: the merge itself works in float32 (float64 for
# float64 inputs) and lands near 1e-6; half-precision outputs add their own rounding.
TOLERANCES = {torch.float64: 1e-8, torch.float32: 1e-4, torch.float16: 5e-3, torch.bfloat16: 3e-2}


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict, with the worst module's relative error ‖merged − expected‖_F / ‖expected‖_F."""

    name: str
    passed: bool
    max_relative_error: float
    worst_module: str | None
    tolerance: float
    problems: tuple[str, ...] = ()  # module sets that differ

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        text = f"{self.name}: {verdict} (max relative error {self.max_relative_error:.3e}"
        text += f" at {self.worst_module}" if self.worst_module else ""
        text += f", tolerance {self.tolerance:g})"
        return text + "".join(f"; {p}" for p in self.problems)


def self_check_identity(
    expert: LoraExpert, *, methods: Iterable[str] = METHODS, tolerance: float | None = None
) -> list[CheckResult]:
    """Merge `expert` alone with weight 1 by each method and compare every module's ΔW with the input's.

    `tolerance` (relative Frobenius error per module) defaults to `TOLERANCES` for the expert's dtype.
    """
    tolerance = _tolerance([expert]) if tolerance is None else tolerance
    expected = {name: module.delta(torch.float64).to("cpu") for name, module in expert.modules.items()}
    results = []
    for method in methods:
        prune_nothing = {"density": 1.0} if method in PRUNING_METHODS else {}
        merged = merge_lora_experts([expert], MergeConfig(method=method, weights=[1.0], **prune_nothing)).expert
        results.append(_compare(f"identity via {method}", expected, merged, tolerance))
    return results


def check_linear_equals_sum(
    experts: list[LoraExpert],
    weights: list[float] | None,
    merged: LoraExpert,
    *,
    tolerance: float | None = None,
) -> CheckResult:
    """Whether `merged`'s ΔW is Σ_k w_k ΔW_k on every module any expert adapts (weights None: 1/K).

    `tolerance` (relative Frobenius error per module) defaults to `TOLERANCES` for the coarsest dtype.
    """
    tolerance = _tolerance([*experts, merged]) if tolerance is None else tolerance
    weights = MergeConfig(method="linear", weights=weights).resolve_weights(len(experts))
    expected: dict[str, torch.Tensor] = {}
    for weight, expert in zip(weights, experts, strict=True):
        for name, module in expert.modules.items():
            term = weight * module.delta(torch.float64).to("cpu")
            expected[name] = expected[name] + term if name in expected else term
    return _compare("linear equals the weighted sum", expected, merged, tolerance)


def run_self_checks(experts: list[LoraExpert], config: MergeConfig, merged: LoraExpert) -> list[CheckResult]:
    """The checks that fit a merge done with `config`: identity of the first expert via the same method, and,
    for the exact merges (linear without a rank, cat), the merged ΔW against Σ w_k ΔW_k.

    A compressing merge is not expected to equal the sum; its report gives each module's relative error.
    """
    results = self_check_identity(experts[0], methods=[config.method])
    if not config.compresses:
        results.append(check_linear_equals_sum(experts, config.resolve_weights(len(experts)), merged))
    return results


def _tolerance(experts: list[LoraExpert]) -> float:
    dtypes = {t.dtype for e in experts for m in e.modules.values() for t in (m.down, m.up)}
    return max(TOLERANCES.get(dtype, TOLERANCES[torch.bfloat16]) for dtype in dtypes)


def _compare(name: str, expected: dict[str, torch.Tensor], merged: LoraExpert, tolerance: float) -> CheckResult:
    problems = []
    missing = [m for m in expected if m not in merged.modules]
    extra = [m for m in merged.modules if m not in expected]
    if missing:
        problems.append(f"{len(missing)} module(s) missing from the merge, e.g. {missing[0]}")
    if extra:
        problems.append(f"{len(extra)} module(s) no input adapts, e.g. {extra[0]}")
    worst_error, worst_module = 0.0, None
    for module_name, reference in expected.items():
        if module_name not in merged.modules:
            continue
        got = merged.modules[module_name].delta(torch.float64).to("cpu")
        if got.shape != reference.shape:
            problems.append(f"{module_name}: ΔW is {list(got.shape)}, expected {list(reference.shape)}")
            continue
        scale = torch.linalg.matrix_norm(reference).item()
        error = torch.linalg.matrix_norm(got - reference).item() / (scale if scale > 0 else 1.0)
        if worst_module is None or error > worst_error:
            worst_error, worst_module = error, module_name
    passed = not problems and worst_error <= tolerance
    return CheckResult(name, passed, worst_error, worst_module, tolerance, tuple(problems))
