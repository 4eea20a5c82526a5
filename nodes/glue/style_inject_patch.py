"""StyleInject on a ComfyUI MODEL: a patched clone whose targeted modules run the tuner's layers after their own
forward.

ComfyUI adapts a model by object patches (`ModelPatcher.add_object_patch(key, obj)`: `obj` replaces the module at
`key` while the clone samples, then the original is put back). The object we patch in is a *view* of the original
module: an instance of a subclass of the module's own class that shares the original's `__dict__` (parameters,
buffers, ComfyUI's cast flags, lowvram weight functions) and only overrides `forward`: the module's own forward,
then each StyleInject layer in turn. Why a view rather than a wrapper module holding the original as a child:

- ComfyUI finds weights by their path: a LoRA patch on `...attn1.to_q.weight` (stock LoraLoader, SELMA's LoRA
  experts, before or after this loader) or a lowvram cast must still find `to_q.weight` there, not under
  `to_q.base_layer.weight`, or it is silently skipped; saving the patched MODEL keeps the checkpoint's keys.
- Nothing is copied at node time: the view reads the live module state, so it cannot go stale when ComfyUI
  patches or restores weights between runs.

The StyleInject layers are the tuner's own `Linear` / `Conv2d` (built around a meta-device stand-in of the base,
whose output is handed to them), so the maths is the tuner's, strength included (`set_scale`). They are not in
the model's module tree (ComfyUI would take the view for a non-leaf module and stop loading its weights), so they
follow the input to its device and dtype themselves, from the expert's tensors kept on the CPU.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ...selma.experts.style_inject_files import DEFAULT_ADAPTER_NAME as ADAPTER
from ...selma.models.unet_names import diffusers_to_ldm
from ...selma.tuners.style_inject import Conv2d, Linear

MODEL_PREFIX = "diffusion_model."  # where ComfyUI keeps the UNet inside ModelPatcher.model


class _GivenOutput(nn.Module):
    """The base layer the tuner layers see: returns the output the view computed just before (no weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.output: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        output, self.output = self.output, None
        return output


def is_style_inject_view(module: object) -> bool:
    """True for the modules this loader patches in (checked by attribute: ComfyUI may import us twice)."""
    return isinstance(getattr(type(module), "selma_base_class", None), type)


def _follow_input(layer: nn.Module, x: torch.Tensor) -> None:
    """Put the layer's parameters on x's device (and in x's float dtype) from the expert's tensors, if not yet.

    Always from the CPU copies, so running in fp16 and then fp32 does not round the weights twice."""
    dtype = x.dtype if x.is_floating_point() else torch.float32
    if layer.selma_placement == (x.device, dtype):
        return
    with torch.inference_mode(False):  # plain tensors: usable in and out of inference mode
        for name, tensor in layer.selma_tensors.items():
            owner, _, leaf = name.rpartition(".")
            moved = tensor.to(device=x.device, dtype=dtype)
            setattr(layer.get_submodule(owner), leaf, nn.Parameter(moved, requires_grad=False))
    layer.selma_placement = (x.device, dtype)


def _view_forward(self: nn.Module, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    h = self.selma_base_class.forward(self, x, *args, **kwargs)
    for layer in self.selma_layers:
        _follow_input(layer, x)
        layer.base_layer.output = h
        h = layer(x)
    return h


def _view_extra_repr(self: nn.Module) -> str:
    return f"{self.selma_base_class.extra_repr(self)}, styleinject_layers={len(self.selma_layers)}"


@functools.cache
def _view_class(base_class: type) -> type:
    # __slots__: the layer list is the view's own (its __dict__ is the original module's).
    return type(
        f"StyleInject{base_class.__name__}",
        (base_class,),
        {
            "__slots__": ("selma_layers",),
            "__module__": __name__,
            "selma_base_class": base_class,
            "forward": _view_forward,
            "extra_repr": _view_extra_repr,
        },
    )


def make_view(module: nn.Module, layers: list[nn.Module], *, stack: bool = True) -> nn.Module:
    """A view of `module` (shared state, see the module docstring) that runs `layers` after it. If `module` is a
    view already, its layers run first with `stack` (experts loaded one after the other), or are dropped."""
    if is_style_inject_view(module):
        layers = [*module.selma_layers, *layers] if stack else list(layers)
        base_class = module.selma_base_class
    else:
        base_class = type(module)
    view = object.__new__(_view_class(base_class))
    view.__dict__ = module.__dict__
    view.selma_layers = layers
    return view


def _stand_in(base: nn.Module) -> nn.Module:
    """A meta-device module with the base's shape and hyper-parameters: what the tuner layer is built around."""
    bias = getattr(base, "bias", None) is not None
    if isinstance(base, nn.Linear):
        return nn.Linear(base.in_features, base.out_features, bias=bias, device="meta")
    if isinstance(base, nn.Conv2d):
        return nn.Conv2d(
            base.in_channels,
            base.out_channels,
            base.kernel_size,
            stride=base.stride,
            padding=base.padding,
            dilation=base.dilation,
            groups=base.groups,
            bias=bias,
            padding_mode=base.padding_mode,
            device="meta",
        )
    raise TypeError(f"StyleInject adapts Linear and Conv2d modules, this one is a {type(base).__name__}")


def build_style_inject_layer(
    base: nn.Module, config: Any, parts: Mapping[str, torch.Tensor], strength: float, module_name: str = "the module"
) -> nn.Module:
    """The tuner's StyleInject layer for `base` (Linear or Conv2d) holding one module's expert tensors (`parts`:
    `styleinject_down`, `styleinject_up`, `styleinject_router.weight`, ...), at `strength`.

    Its base is a `_GivenOutput`: the caller sets `.base_layer.output` to the base output before calling it."""
    try:
        stand_in = _stand_in(base)
    except TypeError as error:
        raise ValueError(f"{module_name}: {error}; this expert was trained for another model") from None
    with torch.inference_mode(False):  # ComfyUI runs nodes in inference mode; these parameters must be plain
        layer = (Linear if isinstance(stand_in, nn.Linear) else Conv2d)(stand_in, ADAPTER, config)
    layer.base_layer = _GivenOutput()
    tensors = {}
    for name, param in layer.named_parameters():
        key = name.replace(f".{ADAPTER}", "", 1)  # styleinject_router.<adapter>.weight -> styleinject_router.weight
        if key not in parts:
            raise ValueError(f"{module_name}: the expert has no {key!r} tensor; the file is incomplete or corrupt")
        if tuple(parts[key].shape) != tuple(param.shape):
            raise ValueError(
                f"{module_name}: the expert's {key} has shape {tuple(parts[key].shape)} but this model's module needs "
                f"{tuple(param.shape)}; the expert was trained for another model (e.g. SDXL vs SD1.5)"
            )
        tensors[name] = parts[key].detach().cpu()
    layer.requires_grad_(False)
    layer.set_scale(ADAPTER, strength)
    layer.selma_tensors = tensors
    layer.selma_placement = None
    return layer


def _ldm_name(module_name: str, unet_config: Any) -> str:
    try:
        return diffusers_to_ldm(module_name, unet_config)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"cannot place the expert's module {module_name!r} in this MODEL ({error}); StyleInject experts load on "
            "the SD-family UNet they were trained for (SD1.x, SD2.x, SDXL)"
        ) from None


def _module_to_patch(model: Any, key: str) -> nn.Module:
    """The module at `key` as this ModelPatcher would run it: its own object patch if it has one (an expert loaded
    before: stacked), else the model's module (a view another clone left in place is seen through)."""
    if key in model.object_patches:
        return model.object_patches[key]
    module = model.get_model_object(key)
    return make_view(module, [], stack=False) if is_style_inject_view(module) else module


def patch_model_with_style_inject(model: Any, expert: Any, strength: float = 1.0) -> Any:
    """A clone of ComfyUI `model` (a ModelPatcher) with the StyleInject `expert` (`load_style_inject_expert`)
    object-patched onto its UNet at `strength` (0 = the model's own output, exactly); `model` is left untouched."""
    if isinstance(strength, bool) or not isinstance(strength, int | float) or not math.isfinite(strength):
        raise ValueError(f"strength must be a finite number (1 = as trained, 0 = off), got {strength!r}")
    unet_config = model.model.model_config.unet_config
    clone = model.clone()
    for module_name in expert.module_names:
        parts = expert.module_tensors(module_name)
        key = MODEL_PREFIX + _ldm_name(module_name, unet_config)
        base = _module_to_patch(model, key)
        layer = build_style_inject_layer(base, expert.config, parts, strength, module_name)
        layer.selma_module_name = module_name  # diffusers name: what router reports call the layer
        clone.add_object_patch(key, make_view(base, [layer]))
    # ComfyUI sizes a load by model_size(), which counts the UNet only: add the expert's weights, or a full GPU
    # runs out of memory while loading instead of offloading first
    clone.size = model.model_size() + sum(t.numel() * t.element_size() for t in expert.tensors.values())
    return clone


def style_inject_layers_of(model: Any) -> dict[str, nn.Module]:
    """`{diffusers module name: StyleInject layer}` of a MODEL patched by `patch_model_with_style_inject` (the
    last expert loaded, where several are stacked): what `record_router` records from."""
    return {
        view.selma_layers[-1].selma_module_name: view.selma_layers[-1]
        for view in model.object_patches.values()
        if is_style_inject_view(view) and view.selma_layers
    }
