"""`StyleInjectModel`: PEFT's tuner for StyleInject: which modules to adapt and how to wrap them.

Used through PEFT's entry points (`unet.add_adapter`, `inject_adapter_in_model`, `get_peft_model`), never
directly. Adapts `nn.Linear` and `nn.Conv2d` (and their subclasses, e.g. ComfyUI's ops).
"""

from __future__ import annotations

from typing import Any

from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer
from torch import nn

from .config import StyleInjectConfig
from .layer import Conv2d, Linear
from .layer_base import StyleInjectLayer


class StyleInjectModel(BaseTuner):
    """Replaces each targeted module with a StyleInject layer wrapping it (or adds an adapter to one)."""

    prefix: str = "styleinject_"
    tuner_layer_cls = StyleInjectLayer
    target_module_mapping: dict[str, list[str]] = {}  # no default targets: the config must name them

    def _create_and_replace(
        self,
        config: StyleInjectConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
        **optional_kwargs: Any,
    ) -> None:
        if isinstance(target, StyleInjectLayer):
            target.update_layer(adapter_name, config)
            return
        new_module = self._create_new_module(config, adapter_name, target, current_key)
        if adapter_name not in self.active_adapters:
            new_module.requires_grad_(False)  # an added, inactive adapter is not trained by default (PEFT's rule)
        self._replace_module(parent, target_name, new_module, target)

    @staticmethod
    def _create_new_module(
        config: StyleInjectConfig, adapter_name: str, target: nn.Module, current_key: str = ""
    ) -> StyleInjectLayer:
        base = target.get_base_layer() if isinstance(target, BaseTunerLayer) else target
        if isinstance(base, nn.Linear):
            return Linear(target, adapter_name, config)
        if isinstance(base, nn.Conv2d):
            return Conv2d(target, adapter_name, config)
        raise TypeError(
            f"StyleInject adapts nn.Linear and nn.Conv2d modules; {current_key or 'the target'} is a "
            f"{type(base).__name__}. Narrow target_modules (e.g. ['to_q', 'to_v']) so it is not matched."
        )

    def _check_merge_allowed(self) -> None:
        raise ValueError(
            "A StyleInject adapter cannot be merged into the base weights: its update depends on the input (router "
            "probabilities and feature statistics). Keep it unmerged, or use unload() to remove it."
        )
