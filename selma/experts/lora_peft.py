"""A LoraExpert on a diffusers UNet: read it from a PEFT adapter, inject it as one, check it fits, fingerprint a base.

PEFT stores per module ``lora_A`` (down), ``lora_B`` (up) and ``scaling = alpha / r`` (times any scale set later);
a LoraExpert stores the factors and alpha, so ``alpha = scaling · r`` on the way out and ``alpha_pattern`` /
``rank_pattern`` carry per-module values on the way in.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

import torch

from .lora_expert import LoraExpert, LoraModule

logger = logging.getLogger(__name__)

# what wrappers put before the UNet's own module names: DDP / Accelerate, torch.compile, PeftModel
_WRAPPER_PREFIXES = ("module.", "_orig_mod.", "base_model.model.")


def _unwrapped_name(name: str) -> str:
    stripped = True
    while stripped:
        stripped = False
        for prefix in _WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name, stripped = name[len(prefix) :], True
    return name


def _weight_shapes_of_module(unet: torch.nn.Module, names: list[str]) -> dict[str, tuple[int, ...] | None]:
    shapes: dict[str, tuple[int, ...] | None] = {}
    for name in names:
        try:
            module = unet.get_submodule(name)
        except AttributeError:
            shapes[name] = None
            continue
        module = getattr(module, "base_layer", module)  # a PEFT-wrapped layer keeps the original as base_layer
        weight = getattr(module, "weight", None)
        shapes[name] = tuple(weight.shape) if isinstance(weight, torch.Tensor) else None
    return shapes


def _weight_shapes_of_mapping(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for key, value in state.items():
        if not key.endswith(".weight") and key.endswith((".bias", ".alpha")):
            continue
        name = key.removesuffix(".weight").replace(".base_layer", "")
        shapes[name] = tuple(value.shape) if hasattr(value, "shape") else tuple(value)
    return shapes


def _squeeze(shape: tuple[int, ...]) -> tuple[int, ...]:
    # A 1x1 conv and a linear layer take the same LoRA (SD1 has conv proj_in, SD2/SDXL linear ones).
    while len(shape) > 2 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def _expert_shape(module: LoraModule) -> tuple[int, ...]:
    return (module.out_features, *module.down.shape[1:])


def check_expert_fits(expert: LoraExpert, unet_or_state_dict_shapes: torch.nn.Module | Mapping[str, Any]) -> None:
    """Raise ValueError unless every module of `expert` exists in the model with the shape its factors need.

    The model is a diffusers UNet (PEFT-wrapped or not) or a mapping of diffusers parameter or module names to
    tensors or shapes (``{n: p.shape for n, p in unet.named_parameters()}``). The error names the first module
    (in the expert's order) that does not fit and both shapes.
    """
    names = list(expert.modules)
    if isinstance(unet_or_state_dict_shapes, torch.nn.Module):
        model = _weight_shapes_of_module(unet_or_state_dict_shapes, names)
    else:
        model = _weight_shapes_of_mapping(unet_or_state_dict_shapes)
    base = expert.metadata.get("base_model", "unknown")
    advice = (
        f"The expert was trained for another architecture (its base model: {base}); load it onto the model family "
        "it was trained for (an SD1.x expert onto an SD1.x checkpoint, SDXL onto SDXL)."
    )
    for name, module in expert.modules.items():
        expected = _expert_shape(module)
        found = model.get(name)
        if found is None:
            raise ValueError(
                f"The expert does not fit this UNet: its module {name!r} (weight shape {expected}) does not exist "
                f"in the model (model shape: none, no such module). {advice}"
            )
        if _squeeze(expected) != _squeeze(found):
            raise ValueError(
                f"The expert does not fit this UNet: module {name!r} has weight shape {expected} in the expert but "
                f"{found} in the model. {advice}"
            )


def lora_expert_from_peft(unet: torch.nn.Module, adapter_name: str = "default") -> LoraExpert:
    """Copy the factors of PEFT adapter `adapter_name` out of a UNet into a LoraExpert (CPU tensors, dtype kept).
    The UNet may be wrapped (DDP / Accelerate, torch.compile, PeftModel): names are the UNet's own.

    ``alpha = scaling · r``, so the expert reproduces the adapter's current scaling (including rsLoRA and any
    scale set with ``set_scale``).
    """
    from peft.tuners.lora import LoraLayer

    modules: dict[str, LoraModule] = {}
    seen_adapters: set[str] = set()
    for name, layer in unet.named_modules():
        if not isinstance(layer, LoraLayer):
            continue
        seen_adapters.update(layer.lora_A.keys())
        if adapter_name not in layer.lora_A:
            continue
        if layer.use_dora.get(adapter_name, False):
            raise ValueError(f"adapter {adapter_name!r} uses DoRA on {name!r}; LoRA experts hold plain LoRA only")
        if getattr(layer.lora_B[adapter_name], "bias", None) is not None:
            raise ValueError(f"adapter {adapter_name!r} has a lora_B bias on {name!r} (lora_bias=True); not supported")
        down = layer.lora_A[adapter_name].weight.detach().to("cpu", copy=True)
        up = layer.lora_B[adapter_name].weight.detach().to("cpu", copy=True)
        alpha = float(layer.scaling[adapter_name]) * layer.r[adapter_name]
        modules[_unwrapped_name(name)] = LoraModule(down=down, up=up, alpha=alpha)
    if not modules:
        found = ", ".join(sorted(seen_adapters)) or "none"
        raise ValueError(f"the UNet has no LoRA adapter named {adapter_name!r} (adapters found: {found})")
    return LoraExpert(modules=modules)


def _most_common(values: list) -> Any:
    return Counter(values).most_common(1)[0][0]


def apply_lora_expert(
    unet: torch.nn.Module, expert: LoraExpert, adapter_name: str = "selma", scale: float = 1.0
) -> torch.nn.Module:
    """Inject `expert` into a diffusers UNet as PEFT adapter `adapter_name` (made the active adapter), with each
    module's own rank and alpha and the expert's exact factors; `scale` multiplies every update. Returns `unet`."""
    from peft import LoraConfig, inject_adapter_in_model

    check_expert_fits(expert, unet)
    existing = getattr(unet, "peft_config", {}) or {}
    if adapter_name in existing:
        raise ValueError(
            f"the UNet already has an adapter named {adapter_name!r}; pass another adapter_name or remove it first "
            f"(unet.delete_adapters({adapter_name!r}))"
        )
    ranks = {name: module.rank for name, module in expert.modules.items()}
    alphas = {name: module.alpha for name, module in expert.modules.items()}
    rank, alpha = _most_common(list(ranks.values())), _most_common(list(alphas.values()))
    # PEFT matches pattern keys as regexes against the module name's suffix, so exact names are escaped.
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        target_modules=list(expert.modules),
        rank_pattern={re.escape(n): r for n, r in ranks.items() if r != rank},
        alpha_pattern={re.escape(n): a for n, a in alphas.items() if a != alpha},
        lora_dropout=0.0,
        init_lora_weights=False,  # overwritten below; skips drawing random factors
    )
    if hasattr(unet, "add_adapter"):  # a diffusers model: register it so set_adapters / delete_adapters know it
        unet.add_adapter(config, adapter_name=adapter_name)
    else:
        inject_adapter_in_model(config, unet, adapter_name=adapter_name)
    with torch.no_grad():
        for name, module in expert.modules.items():
            layer = unet.get_submodule(name)
            down, up = layer.lora_A[adapter_name].weight, layer.lora_B[adapter_name].weight
            down.copy_(module.down.reshape(down.shape))
            up.copy_(module.up.reshape(up.shape))
            layer.set_scale(adapter_name, scale)
    logger.debug("applied a LoRA expert of %d modules as adapter %r", len(expert.modules), adapter_name)
    return unet


def _architecture_config(config: Mapping) -> dict:
    # Keys starting with "_" are bookkeeping (path, version); sample_size is a default resolution, not a shape.
    return {k: v for k, v in sorted(config.items()) if not k.startswith("_") and k != "sample_size"}


def _parameter_shapes(unet: torch.nn.Module) -> list[tuple[str, list[int]]]:
    shapes = []
    for name, parameter in unet.named_parameters():
        if ".lora_" in name or "lora_magnitude_vector" in name:
            continue  # adapters come and go; the base model stays the same
        shapes.append((name.replace(".base_layer", ""), list(parameter.shape)))
    return sorted(shapes)


def fingerprint_unet(unet_or_config: torch.nn.Module | Mapping) -> str:
    """An architecture fingerprint (``UNet2DConditionModel:<16 hex>``): a hash of the config (defaults filled in,
    bookkeeping dropped) and of every parameter's name and shape. The same for a UNet, its config, and the UNet
    with adapters on; weights do not enter it, so fine-tunes of one architecture share it."""
    unet = unet_or_config
    if not isinstance(unet, torch.nn.Module):
        from diffusers import UNet2DConditionModel

        with torch.device("meta"):  # shapes only: no memory, no weight init worth mentioning
            unet = UNet2DConditionModel.from_config(_architecture_config(unet_or_config))
    payload = {"config": _architecture_config(getattr(unet, "config", {})), "parameters": _parameter_shapes(unet)}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
    return f"{type(unet).__name__}:{digest[:16]}"
