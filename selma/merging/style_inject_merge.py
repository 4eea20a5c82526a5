"""Merging StyleInject experts (DESIGN §3.6): exactly by stacking, or by parameter averaging from a shared init.

**Stacking** (`linear`: weights 1/K, SELMA's average; `cat`: weights 1). SELMA's merge is `y = W0 x + Σ_k w_k Δ_k(x)`
with `Δ_k(x) = y_k(x) − W0 x` what expert k alone adds. A StyleInject expert's Δ_k is not linear in its parameters
(a softmax router, AdaIN statistics of its own h_k = W0 x + s B_k z_k), and one StyleInject layer cannot hold K
experts: one softmax over all K·n styles couples the routers (each p_ki would be divided by a sum over every expert's
styles), and one AdaIN over h = W0 x + Σ_k Δ_k uses other statistics than each expert's own. So the exact merge
needs a layer that holds K sets side by side: the tuner's `num_experts` (stacked) layout, which computes every
sub-expert's y_k from the same W0 x and returns `W0 x + Σ_k w_k (y_k − W0 x)`. Each expert keeps its router, its
AdaIN and its styles; the result equals the weighted sum of the experts' updates up to float rounding (exactly
the expert itself for one expert with weight 1). Experts of another rank are zero-padded (exact); another alpha / r
is folded into that expert's up-projection (one rounding); a module only some experts adapt gets zeros (an exact
zero update) from the others; an expert without router (n = 1) gets a zero router (p = 1), one without
hypernetwork a zero hypernetwork (γ = 0). Needed: the same num_styles and sta_eps. Stacked inputs are flattened
(their sub-experts join with their weights multiplied). Cost: K sub-experts per layer, K times the parameters.

**Averaging** (`average`: θ = Σ_k w_k θ_k, weights 1/K): one plain expert with the experts' parameters averaged,
as model soups do. Not exact; meaningful only when the experts started from the same weights, so it is allowed
only when every expert has the same config, modules and shapes, the same base model and the same recorded init
seed (`init_seed`, else the training config's `seed`) — the trainer draws the init from that seed alone. The
merged metadata says so (`merge.shared_init`, `merge.exact = false`).
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

import torch

from .. import __version__
from ..atomic_files import write_text_atomic
from ..experts.style_inject_files import (
    StyleInjectExpert,
    base_weight_shape,
    check_tensors,
    exact_names_pattern,
    load_style_inject_expert,
    natural_sorted,
    save_style_inject_expert,
)

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
STYLE_INJECT_METHODS = ("linear", "cat", "average")
_STACKING = ("linear", "cat")
_SHARED_CONFIG_FIELDS = ("r", "num_styles", "alpha", "use_dma", "use_sta", "sta_eps", "num_experts", "expert_weights")


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


# --------------------------------------------------------------------------------------------------- helpers


def _describe(expert: StyleInjectExpert, index: int) -> str:
    skill = expert.metadata.get("skill")
    return f"expert {index} (skill {skill!r})" if skill else f"expert {index}"


@dataclass
class _Part:
    """One sub-expert of an input: its slice of the input's tensors and its weight in the merge."""

    expert: StyleInjectExpert
    index: int  # which input
    sub: int  # which sub-expert of that input
    weight: float

    @property
    def scaling(self) -> float:
        return self.expert.config.alpha / self.expert.config.r

    def tensors(self, module: str) -> dict[str, torch.Tensor] | None:
        """This sub-expert's tensors of `module` (None if its expert does not adapt it)."""
        parts = self.expert.module_tensors(module)
        if not parts:
            return None
        c = self.expert.config
        styles, ranks = (
            slice(self.sub * c.num_styles, (self.sub + 1) * c.num_styles),
            slice(self.sub * c.r, (self.sub + 1) * c.r),
        )
        out = parts["styleinject_up"].shape[0]
        own = {
            "styleinject_down": parts["styleinject_down"][styles],
            "styleinject_up": parts["styleinject_up"][:, ranks],
        }
        if "styleinject_router.weight" in parts:
            own["styleinject_router.weight"] = parts["styleinject_router.weight"][styles]
            own["styleinject_router.bias"] = parts["styleinject_router.bias"][styles]
        if "styleinject_hyper.weight" in parts:
            rows = slice(self.sub * out, (self.sub + 1) * out)
            own["styleinject_hyper.weight"] = parts["styleinject_hyper.weight"][rows]
            own["styleinject_hyper.bias"] = parts["styleinject_hyper.bias"][rows]
        return own


def _parts(experts: Sequence[StyleInjectExpert], weights: list[float]) -> list[_Part]:
    parts = []
    for index, (expert, weight) in enumerate(zip(experts, weights, strict=True)):
        c = expert.config
        for sub, inner in enumerate(c.expert_weights or [1.0] * c.num_experts):
            parts.append(_Part(expert, index, sub, weight * inner))
    return parts


def _common(experts: Sequence[StyleInjectExpert], what: str, value: Callable[[StyleInjectExpert], Any], hint: str):
    values = [value(e) for e in experts]
    for index, v in enumerate(values):
        if v != values[0]:
            raise ValueError(
                f"{_describe(experts[index], index)} has {what} {v!r}, {_describe(experts[0], 0)} has "
                f"{values[0]!r}; {hint}"
            )
    return values[0]


def _base_shapes(experts: Sequence[StyleInjectExpert]) -> dict[str, tuple[int, ...]]:
    """Every adapted module's base weight shape, checked to agree across the experts."""
    shapes: dict[str, tuple[int, ...]] = {}
    owner: dict[str, int] = {}
    for index, expert in enumerate(experts):
        for name in expert.module_names:
            shape = base_weight_shape(name, expert.module_tensors(name))
            if name in shapes and shapes[name] != shape:
                raise ValueError(
                    f"the experts were trained on different base models: module {name!r} adapts weight shape "
                    f"{shapes[name]} in {_describe(experts[owner[name]], owner[name])} but {shape} in "
                    f"{_describe(expert, index)}; merge experts of one model family"
                )
            shapes.setdefault(name, shape)
            owner.setdefault(name, index)
    return {name: shapes[name] for name in natural_sorted(shapes)}


def _dtype(experts: Sequence[StyleInjectExpert]) -> torch.dtype:
    dtype = torch.float16
    for expert in experts:
        for tensor in expert.tensors.values():
            dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype


def _target_modules(experts: Sequence[StyleInjectExpert], names: list[str]) -> list[str] | str:
    targets = [e.config.target_modules for e in experts]
    if all(isinstance(t, set | list | tuple) for t in targets):
        return sorted({name for t in targets for name in t})
    return exact_names_pattern(names)  # a regex cannot be unioned reliably; the exact names say the same


# --------------------------------------------------------------------------------------------------- stacking


def stack_style_inject_experts(
    experts: Sequence[StyleInjectExpert], weights: Sequence[float], on_progress: ProgressFn | None = None
) -> StyleInjectExpert:
    """The exact merge `W0 x + Σ_k w_k Δ_k(x)` as one stacked expert (see the module docstring); no metadata."""
    from ..tuners.style_inject import StyleInjectConfig

    num_styles = _common(
        experts, "num_styles", lambda e: e.config.num_styles, "stacking needs experts with the same num_styles"
    )
    eps = _common(experts, "sta_eps", lambda e: e.config.sta_eps, "stacking needs experts with the same sta_eps")
    parts = _parts(experts, list(weights))
    shapes = _base_shapes(experts)
    rank = max(e.config.r for e in experts)
    count = len(parts)
    use_dma = any(e.config.use_dma for e in experts)
    use_sta = any(e.config.use_sta for e in experts)
    # The layer scales every sub-expert by alpha / r; other scalings are folded into their up-projections.
    same = len({(e.config.r, e.config.alpha) for e in experts}) == 1
    alpha = experts[0].config.alpha if same else parts[0].scaling * rank
    scaling = alpha / rank
    dtype = _dtype(experts)
    tensors: dict[str, torch.Tensor] = {}
    for done, (name, shape) in enumerate(shapes.items(), 1):
        out, width, kernel = shape[0], shape[1], shape[2:]
        one = (1, 1) if kernel else ()
        down = torch.zeros(count * num_styles, rank, width, *kernel, dtype=dtype)
        up = torch.zeros(out, count * rank, *one, dtype=dtype)
        router_w = torch.zeros(count * num_styles, width, *one, dtype=dtype)
        router_b = torch.zeros(count * num_styles, dtype=dtype)
        hyper_w = torch.zeros(count * out, num_styles, dtype=dtype)
        hyper_b = torch.zeros(count * out, dtype=dtype)
        for k, part in enumerate(parts):
            own = part.tensors(name)
            if own is None:
                continue  # zeros: B = 0 and γ = 0, an exact zero update
            r = part.expert.config.r
            styles, ranks = slice(k * num_styles, (k + 1) * num_styles), slice(k * rank, k * rank + r)
            down[styles, :r] = own["styleinject_down"]
            factor = part.scaling / scaling
            up[:, ranks] = own["styleinject_up"] if factor == 1.0 else own["styleinject_up"].double() * factor
            if "styleinject_router.weight" in own:
                router_w[styles] = own["styleinject_router.weight"]
                router_b[styles] = own["styleinject_router.bias"]
            if "styleinject_hyper.weight" in own:
                hyper_w[k * out : (k + 1) * out] = own["styleinject_hyper.weight"]
                hyper_b[k * out : (k + 1) * out] = own["styleinject_hyper.bias"]
        tensors[f"{name}.styleinject_down"], tensors[f"{name}.styleinject_up"] = down, up
        if use_dma:
            tensors[f"{name}.styleinject_router.weight"], tensors[f"{name}.styleinject_router.bias"] = (
                router_w,
                router_b,
            )
        if use_sta:
            tensors[f"{name}.styleinject_hyper.weight"], tensors[f"{name}.styleinject_hyper.bias"] = hyper_w, hyper_b
        if on_progress is not None:
            on_progress(done, len(shapes))
    part_weights = [p.weight for p in parts]
    config = StyleInjectConfig(
        r=rank,
        num_styles=num_styles,
        alpha=alpha,
        target_modules=_target_modules(experts, list(shapes)),
        use_dma=use_dma,
        use_sta=use_sta,
        sta_eps=eps,
        num_experts=count,
        expert_weights=None if part_weights == [1.0] * count else part_weights,
    )
    check_tensors(tensors, config, "the stacked expert")
    return StyleInjectExpert(config, tensors)


# --------------------------------------------------------------------------------------------------- averaging


def init_seed(expert: StyleInjectExpert) -> int | None:
    """The seed the expert's adapter was initialised from: `init_seed`, else its training config's `seed`."""
    seed = expert.metadata.get("init_seed")
    if seed is None and isinstance(expert.metadata.get("config"), dict):
        seed = expert.metadata["config"].get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def check_shared_init(experts: Sequence[StyleInjectExpert]) -> dict[str, Any]:
    """Raise ValueError unless the experts provably started from the same weights; return what they share."""
    hint = "parameter averaging needs experts trained from one initialisation; merge them exactly with 'linear'"
    for index, expert in enumerate(experts):
        if init_seed(expert) is None:
            raise ValueError(f"{_describe(expert, index)} records no init seed (init_seed or config.seed); {hint}")
    seed = _common(experts, "init seed", init_seed, hint)
    for name in _SHARED_CONFIG_FIELDS:
        _common(experts, name, lambda e, n=name: getattr(e.config, n), hint)
    _common(experts, "modules", lambda e: e.module_names, hint)
    _common(experts, "tensor shapes", lambda e: {k: tuple(t.shape) for k, t in e.tensors.items()}, hint)
    base = _common(experts, "base model", lambda e: e.metadata.get("base_model"), hint)
    init = _common(experts, "init", lambda e: (e.metadata.get("config") or {}).get("init"), hint)
    if experts[0].config.num_experts != 1:
        raise ValueError(f"{_describe(experts[0], 0)} is a stacked merge; {hint}")
    return {"init_seed": seed, "base_model": base, "init": init}


def average_style_inject_experts(
    experts: Sequence[StyleInjectExpert], weights: Sequence[float], on_progress: ProgressFn | None = None
) -> StyleInjectExpert:
    """θ = Σ_k w_k θ_k over every tensor (after `check_shared_init`); the config is the experts' own; no metadata."""
    import copy

    check_shared_init(experts)
    dtype = _dtype(experts)
    keys = list(experts[0].tensors)
    tensors = {}
    for done, key in enumerate(keys, 1):
        total = sum(w * e.tensors[key].double() for e, w in zip(experts, weights, strict=True))
        tensors[key] = total.to(dtype)
        if on_progress is not None:
            on_progress(done, len(keys))
    return StyleInjectExpert(copy.deepcopy(experts[0].config), tensors)


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
