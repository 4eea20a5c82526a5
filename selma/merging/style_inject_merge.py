"""Merging StyleInject experts (DESIGN §3.6): exactly by stacking, or by parameter averaging from a shared init.

**Stacking** (`linear`: weights 1/K, SELMA's average; `cat`: weights 1) is exact: one stacked expert holds the
K experts side by side (`style_inject_stacking`). **Averaging** (`average`: θ = Σ_k w_k θ_k, weights 1/K) is one
plain expert with the parameters averaged, allowed only for experts of one initialisation
(`style_inject_averaging`). This module holds the merge's settings (`StyleInjectMergeConfig`), its result and
recipe, and the entry points: `merge_style_inject_experts` (in memory) and `merge_style_inject_files` (files in,
merged file and report out: what the CLI runs).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any

from .. import __version__
from ..atomic_files import write_text_atomic
from ..experts.style_inject_files import StyleInjectExpert, load_style_inject_expert
from ..experts.style_inject_save import save_style_inject_expert
from .style_inject_averaging import average_style_inject_experts, check_shared_init, init_seed
from .style_inject_stacking import stack_style_inject_experts

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
STYLE_INJECT_METHODS = ("linear", "cat", "average")
_STACKING = ("linear", "cat")


@dataclass(frozen=True)
class StyleInjectMergeConfig:
    method: str = field(default="linear", metadata={"help": f"one of {', '.join(STYLE_INJECT_METHODS)}"})
    weights: tuple[float, ...] | None = field(
        default=None, metadata={"help": "one weight per expert, used as given; None = 1/K (cat: 1)"}
    )

    def __post_init__(self) -> None:
        if self.method not in STYLE_INJECT_METHODS:
            raise ValueError(
                f"StyleInjectMergeConfig.method={self.method!r} is not available for StyleInject experts; use one of "
                f"{', '.join(STYLE_INJECT_METHODS)} (linear/cat stack the experts exactly, average averages their "
                "parameters); svd, ties, dare and magnitude work on LoRA's ΔW = BA, which StyleInject does not have"
            )
        if self.weights is not None:
            weights = tuple(self.weights) if isinstance(self.weights, list | tuple) else ()
            if not weights or not all(
                isinstance(w, Real) and not isinstance(w, bool) and math.isfinite(w) for w in weights
            ):
                raise ValueError(
                    f"StyleInjectMergeConfig.weights={self.weights!r} must be a non-empty list of finite numbers, one "
                    "per expert (or None for the method's default)"
                )
            object.__setattr__(self, "weights", tuple(float(w) for w in weights))

    def resolve_weights(self, count: int) -> list[float]:
        if self.weights is None:
            return [1.0 if self.method == "cat" else 1.0 / count] * count
        if len(self.weights) != count:
            raise ValueError(
                f"StyleInjectMergeConfig.weights has {len(self.weights)} value(s) but {count} expert(s) were given; "
                "give exactly one weight per expert, in the same order, or none for the default"
            )
        return list(self.weights)


@dataclass
class StyleInjectMergeResult:
    """The merged expert (its recipe in `expert.metadata["merge"]`)."""

    expert: StyleInjectExpert

    @property
    def recipe(self) -> dict[str, Any]:
        return self.expert.metadata["merge"]

    def summary(self) -> str:
        r, c = self.recipe, self.expert.config
        kind = "exact, stacked" if r["exact"] else "parameter average (not exact; shared init)"
        return (
            f"StyleInject merge {r['method']} ({kind}) of {len(r['inputs'])} expert(s), weights "
            f"{', '.join(f'{w:g}' for w in r['weights'])}: {len(self.expert.module_names)} module(s), "
            f"num_experts {c.num_experts}, r {c.r}, num_styles {c.num_styles}, "
            f"{self.expert.parameter_count / 1e6:.2f}M parameters"
        )


# --------------------------------------------------------------------------------------------------- the merge


def _recipe(experts: Sequence[StyleInjectExpert], config: StyleInjectMergeConfig, weights: list[float]) -> dict:
    recipe: dict[str, Any] = {"method": config.method, "weights": weights, "exact": config.method in _STACKING}
    recipe["layout"] = "stacked" if config.method in _STACKING else "averaged"
    inputs = []
    for expert in experts:
        entry = {key: expert.metadata[key] for key in ("skill", "base_model") if key in expert.metadata}
        c = expert.config
        entry.update(r=c.r, num_styles=c.num_styles, num_experts=c.num_experts, modules=len(expert.module_names))
        if init_seed(expert) is not None:
            entry["init_seed"] = init_seed(expert)
        inputs.append(entry)
    recipe["inputs"] = inputs
    recipe["selma_version"] = __version__
    return recipe


def merge_style_inject_experts(
    experts: Sequence[StyleInjectExpert], config: StyleInjectMergeConfig, on_progress: ProgressFn | None = None
) -> StyleInjectMergeResult:
    """Merge StyleInject experts in memory: `linear` / `cat` stack them exactly, `average` averages parameters."""
    if not experts:
        raise ValueError("no experts to merge: give at least one StyleInject expert")
    weights = config.resolve_weights(len(experts))
    recipe = _recipe(experts, config, weights)
    if config.method in _STACKING:
        merged = stack_style_inject_experts(experts, weights, on_progress)
    else:
        recipe["shared_init"] = check_shared_init(experts)
        merged = average_style_inject_experts(experts, weights, on_progress)
    metadata: dict[str, Any] = {"merge": recipe}
    skills = [e.metadata.get("skill") for e in experts]
    if all(isinstance(s, str) and s for s in skills):
        metadata["skill"] = "+".join(skills)
    bases = {e.metadata.get("base_model") for e in experts}
    if len(bases) == 1 and None not in bases:
        metadata["base_model"] = bases.pop()
    elif len(bases) > 1:
        log.warning("the experts disagree on base_model; the merge records each input's value in its recipe")
    merged.metadata = metadata
    return StyleInjectMergeResult(merged)


def merge_style_inject_files(
    paths: Sequence[str | Path],
    config: StyleInjectMergeConfig,
    output: str | Path,
    *,
    report_path: str | Path | None = None,
    on_progress: ProgressFn | None = None,
) -> StyleInjectMergeResult:
    """Read StyleInject expert files, merge them, write the merged expert and a report JSON (`OUT.report.json`:
    the recipe and each module's inputs), atomically. Checks the output name and weights before reading."""
    from .merge_files import default_report_path

    output = Path(output)
    if output.suffix != ".safetensors":
        raise ValueError(f"the merged expert must be written to a .safetensors file, got {output}")
    config.resolve_weights(len(paths))
    experts = [load_style_inject_expert(p) for p in paths]
    result = merge_style_inject_experts(experts, config, on_progress)
    for entry, path in zip(result.recipe["inputs"], paths, strict=True):
        entry["file"] = Path(path).name  # the name only: full paths would leak the user's folders
    save_style_inject_expert(output, result.expert, result.expert.config)
    adapted = [set(e.module_names) for e in experts]
    report = {
        "output": output.name,
        "recipe": result.recipe,
        "modules": {
            name: [i for i, names in enumerate(adapted) if name in names] for name in result.expert.module_names
        },
    }
    report_path = default_report_path(output) if report_path is None else Path(report_path)
    write_text_atomic(report_path, json.dumps(report, indent=1) + "\n")
    log.info("merged %d StyleInject expert(s) into %s (report %s)", len(experts), output, report_path)
    return result
