"""The exact StyleInject merge: K experts side by side in one stacked expert (`stack_style_inject_experts`).

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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..experts.style_inject_files import StyleInjectExpert, check_tensors, exact_names_pattern, natural_sorted
from ..experts.style_inject_shapes import base_weight_shape
from .style_inject_merge_inputs import describe, merged_dtype, shared_value

ProgressFn = Callable[[int, int], None]


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
                    f"{shapes[name]} in {describe(experts[owner[name]], owner[name])} but {shape} in "
                    f"{describe(expert, index)}; merge experts of one model family"
                )
            shapes.setdefault(name, shape)
            owner.setdefault(name, index)
    return {name: shapes[name] for name in natural_sorted(shapes)}


def _target_modules(experts: Sequence[StyleInjectExpert], names: list[str]) -> list[str] | str:
    targets = [e.config.target_modules for e in experts]
    if all(isinstance(t, set | list | tuple) for t in targets):
        return sorted({name for t in targets for name in t})
    return exact_names_pattern(names)  # a regex cannot be unioned reliably; the exact names say the same


def stack_style_inject_experts(
    experts: Sequence[StyleInjectExpert], weights: Sequence[float], on_progress: ProgressFn | None = None
) -> StyleInjectExpert:
    """The exact merge `W0 x + Σ_k w_k Δ_k(x)` as one stacked expert (see the module docstring); no metadata."""
    from ..tuners.style_inject import StyleInjectConfig

    num_styles = shared_value(
        experts, "num_styles", lambda e: e.config.num_styles, "stacking needs experts with the same num_styles"
    )
    eps = shared_value(experts, "sta_eps", lambda e: e.config.sta_eps, "stacking needs experts with the same sta_eps")
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
    dtype = merged_dtype(experts)
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
