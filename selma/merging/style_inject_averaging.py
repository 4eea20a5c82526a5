"""The StyleInject parameter average θ = Σ_k w_k θ_k (`average_style_inject_experts`), for experts of one init.

**Averaging** (`average`: θ = Σ_k w_k θ_k, weights 1/K): one plain expert with the experts' parameters averaged,
as model soups do. Not exact; meaningful only when the experts started from the same weights, so it is allowed
only when every expert has the same config, modules and shapes, the same base model and the same recorded init
seed (`init_seed`, else the training config's `seed`) — the trainer draws the init from that seed alone. The
merged metadata says so (`merge.shared_init`, `merge.exact = false`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..experts.style_inject_files import StyleInjectExpert
from .style_inject_merge_inputs import describe, merged_dtype, shared_value

ProgressFn = Callable[[int, int], None]
_SHARED_CONFIG_FIELDS = ("r", "num_styles", "alpha", "use_dma", "use_sta", "sta_eps", "num_experts", "expert_weights")


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
            raise ValueError(f"{describe(expert, index)} records no init seed (init_seed or config.seed); {hint}")
    seed = shared_value(experts, "init seed", init_seed, hint)
    for name in _SHARED_CONFIG_FIELDS:
        shared_value(experts, name, lambda e, n=name: getattr(e.config, n), hint)
    shared_value(experts, "modules", lambda e: e.module_names, hint)
    shared_value(experts, "tensor shapes", lambda e: {k: tuple(t.shape) for k, t in e.tensors.items()}, hint)
    base = shared_value(experts, "base model", lambda e: e.metadata.get("base_model"), hint)
    init = shared_value(experts, "init", lambda e: (e.metadata.get("config") or {}).get("init"), hint)
    if experts[0].config.num_experts != 1:
        raise ValueError(f"{describe(experts[0], 0)} is a stacked merge; {hint}")
    return {"init_seed": seed, "base_model": base, "init": init}


def average_style_inject_experts(
    experts: Sequence[StyleInjectExpert], weights: Sequence[float], on_progress: ProgressFn | None = None
) -> StyleInjectExpert:
    """θ = Σ_k w_k θ_k over every tensor (after `check_shared_init`); the config is the experts' own; no metadata."""
    import copy

    check_shared_init(experts)
    dtype = merged_dtype(experts)
    keys = list(experts[0].tensors)
    tensors = {}
    for done, key in enumerate(keys, 1):
        total = sum(w * e.tensors[key].double() for e, w in zip(experts, weights, strict=True))
        tensors[key] = total.to(dtype)
        if on_progress is not None:
            on_progress(done, len(keys))
    return StyleInjectExpert(copy.deepcopy(experts[0].config), tensors)
