"""The merge report: per module, the rank of the result, the energy it keeps and its relative error.

For the exact merges (`linear` without a rank, `cat`) every module keeps all its energy. For `svd` the
numbers compare the result with the exact weighted sum; for ties/dare/magnitude with the pruned sum
before its compression to a rank.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ModuleReport:
    module: str  # diffusers module name
    shape: tuple[int, int]  # ΔW's [out, in·kh·kw]
    experts: int  # how many input experts adapt this module
    rank: int  # rank of the merged update
    energy_kept: float  # Σ kept σ² / Σ σ²
    relative_error: float  # ‖merged − target‖_F / ‖target‖_F

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["shape"] = list(self.shape)
        return data


def summarize(report: list[ModuleReport]) -> dict[str, Any]:
    """Module count, rank range, the worst and mean energy kept and the worst relative error."""
    if not report:
        return {"modules": 0}
    worst = min(report, key=lambda r: r.energy_kept)
    return {
        "modules": len(report),
        "rank_min": min(r.rank for r in report),
        "rank_max": max(r.rank for r in report),
        "energy_kept_min": worst.energy_kept,
        "energy_kept_min_module": worst.module,
        "energy_kept_mean": sum(r.energy_kept for r in report) / len(report),
        "relative_error_max": max(r.relative_error for r in report),
    }


def report_to_json(report: list[ModuleReport], recipe: dict[str, Any]) -> dict[str, Any]:
    """The report as one JSON-ready dict: the recipe's method/weights/rank, a summary, every module."""
    head = {key: recipe.get(key) for key in ("method", "weights", "rank", "density", "seed") if key in recipe}
    return {**head, "summary": summarize(report), "modules": [r.to_json() for r in report]}


def format_report(report: list[ModuleReport], recipe: dict[str, Any]) -> str:
    """The report as a plain-text table, headed by the recipe and closed by a summary line."""
    weights = ", ".join(f"{w:g}" for w in recipe.get("weights", []))
    head = f"merge: {recipe.get('method')} of {len(recipe.get('inputs', []))} expert(s), weights [{weights}]"
    if recipe.get("rank") is not None:
        head += f", rank {recipe['rank']}"
    if "density" in recipe:
        head += f", density {recipe['density']:g}"
    width = max([len("module"), *(len(r.module) for r in report)])
    lines = [head, f"{'module':<{width}}  {'shape':>11}  experts  rank  energy kept  rel. error"]
    for r in report:
        shape = f"{r.shape[0]}x{r.shape[1]}"
        lines.append(
            f"{r.module:<{width}}  {shape:>11}  {r.experts:>7}  {r.rank:>4}  {r.energy_kept:>11.6f}  "
            f"{r.relative_error:>10.3e}"
        )
    s = summarize(report)
    if report:
        lines.append(
            f"{s['modules']} module(s), rank {s['rank_min']}..{s['rank_max']}; energy kept: min "
            f"{s['energy_kept_min']:.6f} ({s['energy_kept_min_module']}), mean {s['energy_kept_mean']:.6f}; "
            f"relative error max {s['relative_error_max']:.3e}"
        )
    return "\n".join(lines)
