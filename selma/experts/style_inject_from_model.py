"""A StyleInject adapter copied out of a UNet into a `StyleInjectExpert`: `style_inject_expert_from_model`.

The config is the one the adapter was added with, else read off its layers (`_config_from_layers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

from .lora_peft import _unwrapped_name
from .style_inject_files import StyleInjectExpert, check_tensors, natural_key

if TYPE_CHECKING:
    from ..tuners.style_inject import StyleInjectConfig


def _config_from_layers(layers: Mapping[str, torch.nn.Module], adapter_name: str) -> StyleInjectConfig:
    from ..tuners.style_inject import StyleInjectConfig

    layer = next(layer for layer in layers.values() if adapter_name in layer.styleinject_down)
    r = layer.styleinject_r[adapter_name]
    experts = layer.styleinject_num_experts.get(adapter_name, 1)
    weights = layer.styleinject_expert_weights.get(adapter_name)
    return StyleInjectConfig(
        r=r,
        num_styles=layer.styleinject_num_styles[adapter_name],
        alpha=layer.styleinject_scaling[adapter_name] * r,
        target_modules=sorted(
            {name.rsplit(".", 1)[-1] for name, m in layers.items() if adapter_name in m.styleinject_down}
        ),
        use_dma=adapter_name in layer.styleinject_router,
        use_sta=adapter_name in layer.styleinject_hyper,
        sta_eps=layer.styleinject_eps[adapter_name],
        num_experts=experts,
        expert_weights=None if weights in (None, [1.0] * experts) else list(weights),
    )


def style_inject_expert_from_model(unet: torch.nn.Module, adapter_name: str = "default") -> StyleInjectExpert:
    """Copy StyleInject adapter `adapter_name` out of a UNet (CPU tensors, dtype kept) into a StyleInjectExpert.
    Names are the UNet's own (wrapper prefixes of DDP, torch.compile or PeftModel removed); the config is the one
    the adapter was added with (`unet.peft_config`), else read off its layers."""
    import copy

    from ..tuners.style_inject import style_inject_layers, style_inject_state_dict

    state = style_inject_state_dict(unet, adapter_name)
    tensors = {_unwrapped_name(key): t.detach().to("cpu", copy=True) for key, t in state.items()}
    config = (getattr(unet, "peft_config", None) or {}).get(adapter_name)
    if config is None or getattr(config, "peft_type", None) is None or str(config.peft_type.value) != "STYLEINJECT":
        config = _config_from_layers(style_inject_layers(unet), adapter_name)
    else:
        config = copy.deepcopy(config)
    check_tensors(tensors, config, f"adapter {adapter_name!r}")
    return StyleInjectExpert(config=config, tensors=dict(sorted(tensors.items(), key=lambda kv: natural_key(kv[0]))))
