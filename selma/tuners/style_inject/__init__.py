"""StyleInject (DESIGN §3.5) as a PEFT method: `StyleInjectConfig` works with `unet.add_adapter(...)`,
`peft.inject_adapter_in_model(...)` and `peft.get_peft_model(...)` once this package is imported.

    from selma.tuners.style_inject import StyleInjectConfig, record_router, style_inject_state_dict
    unet.add_adapter(StyleInjectConfig(r=32, num_styles=4, alpha=32, target_modules=["to_q", "to_v"]))
"""

from __future__ import annotations

from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING
from peft.utils import register_peft_method

from .adain import adain_rescale
from .config import METHOD_NAME, StyleInjectConfig, style_inject_peft_type
from .down_projection import mixed_down_conv2d, mixed_down_linear
from .layer import Conv2d, Linear
from .layer_base import StyleInjectLayer
from .model import StyleInjectModel
from .router_recording import RouterRecorder, record_router
from .state_dict import (
    is_style_inject_layer,
    load_style_inject_state_dict,
    style_inject_layers,
    style_inject_state_dict,
)

__all__ = [
    "Conv2d",
    "Linear",
    "RouterRecorder",
    "StyleInjectConfig",
    "StyleInjectLayer",
    "StyleInjectModel",
    "adain_rescale",
    "is_style_inject_layer",
    "load_style_inject_state_dict",
    "mixed_down_conv2d",
    "mixed_down_linear",
    "record_router",
    "style_inject_layers",
    "style_inject_state_dict",
]


def _register_with_peft() -> None:
    peft_type = style_inject_peft_type()
    registered = PEFT_TYPE_TO_TUNER_MAPPING.get(peft_type)
    if registered is None:
        register_peft_method(name=METHOD_NAME, config_cls=StyleInjectConfig, model_cls=StyleInjectModel)
    elif registered.__qualname__ != StyleInjectModel.__qualname__ or not registered.__module__.endswith(
        "tuners.style_inject.model"
    ):
        raise RuntimeError(
            f"PEFT already has a method named {METHOD_NAME!r}, from {registered.__module__}; StyleInject cannot be "
            "registered twice under one name"
        )
    # else: this package imported a second time under another name (ComfyUI imports the repository by its folder
    # name; a script may also import `selma`). The first registration serves both: its layers are recognised by
    # is_style_inject_layer, not isinstance.


_register_with_peft()
