"""StyleInject weights of a model as a flat `{key: tensor}` dict, and back, for expert files.

Keys are `<module name>.<part>` with the module name relative to the model passed in (diffusers names for
a diffusers UNet) and the part one of: `styleinject_down` [n, r, in(, kh, kw)] (the stacked A_i),
`styleinject_up` [out, r(, 1, 1)] (the shared B), `styleinject_router.weight` / `.bias` (absent with
`use_dma=False`), `styleinject_hyper.weight` / `.bias` (absent with `use_sta=False`). These are the keys
PEFT's own `get_peft_model_state_dict` gives for the same adapter. With `num_experts` K > 1 the first dimension
of `styleinject_down`, the second of `styleinject_up` and the router's outputs are K times larger, and the
hypernetwork has K·out outputs (layer_base.py's stacked layout).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

_SHOWN = 5  # how many offending keys an error message lists


def is_style_inject_layer(module: nn.Module) -> bool:
    """True for StyleInject layers, whichever copy of this package made them.

    ComfyUI imports this repository as a package under its folder name while a script may import `selma`: the
    same classes then exist twice and PEFT uses the first registered, so layers are recognised by what they
    carry rather than by isinstance.
    """
    return isinstance(module, BaseTunerLayer) and hasattr(module, "styleinject_down")


def style_inject_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The StyleInject layers of `model` by module name (in `named_modules` order)."""
    return {name: module for name, module in model.named_modules() if is_style_inject_layer(module)}


def _adapter_names(layers: Mapping[str, nn.Module]) -> list[str]:
    return sorted({adapter for layer in layers.values() for adapter in layer.styleinject_down})


def style_inject_state_dict(model: nn.Module, adapter_name: str = "default") -> dict[str, torch.Tensor]:
    """One adapter's weights, keyed as the module docstring says (detached; they share storage with the model)."""
    layers = style_inject_layers(model)
    state: dict[str, torch.Tensor] = {}
    for name, layer in layers.items():
        if adapter_name not in layer.styleinject_down:
            continue
        state[f"{name}.styleinject_down"] = layer.styleinject_down[adapter_name].detach()
        state[f"{name}.styleinject_up"] = layer.styleinject_up[adapter_name].detach()
        for part in ("styleinject_router", "styleinject_hyper"):
            modules = getattr(layer, part)
            if adapter_name in modules:
                state[f"{name}.{part}.weight"] = modules[adapter_name].weight.detach()
                state[f"{name}.{part}.bias"] = modules[adapter_name].bias.detach()
    if not state:
        raise ValueError(
            f"the model has no StyleInject adapter named {adapter_name!r} (it has "
            f"{_adapter_names(layers) or 'none'}); inject one with "
            "unet.add_adapter(StyleInjectConfig(...), adapter_name=...) first"
        )
    return state


def _listed(keys: set[str]) -> str:
    shown = sorted(keys)[:_SHOWN]
    return ", ".join(shown) + (f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else "")


def load_style_inject_state_dict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], adapter_name: str = "default"
) -> None:
    """Copy weights saved by `style_inject_state_dict` into the model's adapter `adapter_name`, in place.

    The adapter must already exist with the same config (targets, r, num_styles, use_dma, use_sta): every key
    must match, with its shape; values are cast to the parameters' dtype and device.
    """
    params = style_inject_state_dict(model, adapter_name)
    missing, unexpected = params.keys() - state_dict.keys(), state_dict.keys() - params.keys()
    if missing or unexpected:
        problems = [f"missing {_listed(missing)}"] if missing else []
        problems += [f"unexpected {_listed(unexpected)}"] if unexpected else []
        raise ValueError(
            f"StyleInject weights do not fit adapter {adapter_name!r}: {'; '.join(problems)}. Inject the adapter "
            "with the config the weights were saved with (same target_modules, use_dma, use_sta) and module names "
            "of the same model family."
        )
    wrong = {
        key: (tuple(state_dict[key].shape), tuple(param.shape))
        for key, param in params.items()
        if state_dict[key].shape != param.shape
    }
    if wrong:
        shown = "; ".join(f"{k}: saved {saved}, model {have}" for k, (saved, have) in sorted(wrong.items())[:_SHOWN])
        raise ValueError(
            f"StyleInject weights have other shapes than adapter {adapter_name!r} ({len(wrong)} tensors): {shown}. "
            "Inject the adapter with the r and num_styles the weights were saved with."
        )
    with torch.no_grad():
        for key, param in params.items():
            param.copy_(state_dict[key])
