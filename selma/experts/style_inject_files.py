"""StyleInject expert files: one self-describing ``.safetensors`` per expert (DESIGN §3.4), and experts on a UNet.

Keys are ``<diffusers UNet module name>.<part>``, the part one of ``styleinject_down`` [K·n, r, in(, kh, kw)] (the
stacked A_i), ``styleinject_up`` [out, K·r(, 1, 1)] (the shared B), ``styleinject_router.weight`` / ``.bias`` (absent
for DMA-free, 'STA alone' experts), ``styleinject_hyper.weight`` / ``.bias`` (absent for 'DMA alone' experts); K is
the config's ``num_experts`` (1 unless the file is a stacked merge). These are the keys `style_inject_state_dict`
gives for a diffusers UNet, so a file loads with ``unet.add_adapter(config)`` + `load_style_inject_state_dict`; the
ComfyUI loader maps the module names to LDM names with `selma.models.unet_names.diffusers_to_ldm`.

The header (string metadata) holds ``selma.format`` = ``styleinject/1``, ``selma.method`` = ``styleinject``,
``selma.styleinject_config`` (the `StyleInjectConfig` as JSON), ``selma.skill``, ``selma.base_model``,
``selma.steps``, ``selma.version``, ``selma.config`` (the training config as JSON) and any other metadata as JSON.

This module holds the format (keys, header), the expert in memory (`StyleInjectExpert`), its checks, reading
(`load_style_inject_expert`) and adding an expert to a diffusers UNet (`apply_style_inject_expert`). Writing is
`style_inject_save.save_style_inject_expert`, copying an adapter out of a UNet
`style_inject_from_model.style_inject_expert_from_model`; the per-module shapes are in `style_inject_shapes`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .finite import check_finite
from .header import decode_metadata
from .style_inject_shapes import base_weight_shape, expected_shapes

if TYPE_CHECKING:
    from ..tuners.style_inject import StyleInjectConfig

log = logging.getLogger(__name__)

FORMAT = "styleinject/1"
METHOD = "styleinject"
DEFAULT_ADAPTER_NAME = "selma_styleinject"
PARTS = (
    "styleinject_down",
    "styleinject_up",
    "styleinject_router.weight",
    "styleinject_router.bias",
    "styleinject_hyper.weight",
    "styleinject_hyper.bias",
)
CONFIG_KEY = "styleinject_config"


def natural_key(name: str) -> list:
    """The sort key of `natural_sorted`."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def natural_sorted(names) -> list[str]:
    """Module names in natural order (`down_blocks.2` before `down_blocks.10`), as files and experts list them."""
    return sorted(names, key=natural_key)


def split_key(key: str) -> tuple[str, str]:
    """``<module>.styleinject_router.weight`` -> (``<module>``, ``styleinject_router.weight``)."""
    for part in PARTS:
        if key.endswith("." + part):
            return key[: -len(part) - 1], part
    raise ValueError(
        f"{key!r} is not a StyleInject key: expected <module name>.<part> with the part one of {', '.join(PARTS)}"
    )


@dataclass
class StyleInjectExpert:
    """A StyleInject expert in memory: its adapter config, its tensors by ``<module>.<part>``, its metadata."""

    config: StyleInjectConfig
    tensors: dict[str, torch.Tensor]
    metadata: dict = field(default_factory=dict)

    @property
    def module_names(self) -> list[str]:
        """The adapted modules (diffusers UNet names), in natural order."""
        return sorted({split_key(key)[0] for key in self.tensors}, key=natural_key)

    def module_tensors(self, name: str) -> dict[str, torch.Tensor]:
        """One module's tensors by part (``styleinject_down``, ``styleinject_router.weight``, ...)."""
        return {part: self.tensors[f"{name}.{part}"] for part in PARTS if f"{name}.{part}" in self.tensors}

    @property
    def parameter_count(self) -> int:
        return sum(t.numel() for t in self.tensors.values())


# --------------------------------------------------------------------------------------------------- checks


def check_tensors(tensors: Mapping[str, torch.Tensor], config: StyleInjectConfig, source: str = "the expert") -> None:
    """Raise ValueError unless `tensors` are exactly what `config` makes per module: every part present (router iff
    use_dma, hypernetwork iff use_sta), no other key, and the shapes r, num_styles and num_experts give."""
    if not tensors:
        raise ValueError(f"{source} holds no StyleInject tensors")
    modules: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        try:
            name, part = split_key(key)
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None
        modules.setdefault(name, {})[part] = tensor
    for name in sorted(modules, key=natural_key):
        parts = modules[name]
        for needed in ("styleinject_down", "styleinject_up"):
            if needed not in parts:
                raise ValueError(f"{source}: module {name!r} has no {needed}; the file is incomplete")
        expected = expected_shapes(parts, config, name)
        missing, unexpected = expected.keys() - parts.keys(), parts.keys() - expected.keys()
        if missing or unexpected:
            switches = f"use_dma={config.use_dma}, use_sta={config.use_sta}"
            raise ValueError(
                f"{source}: module {name!r} does not match its config ({switches}): "
                + "; ".join(
                    [f"missing {', '.join(sorted(missing))}"] * bool(missing)
                    + [f"unexpected {', '.join(sorted(unexpected))}"] * bool(unexpected)
                )
            )
        for part, shape in expected.items():
            if tuple(parts[part].shape) != shape:
                raise ValueError(
                    f"{source}: module {name!r}: {part} has shape {tuple(parts[part].shape)}, but r={config.r}, "
                    f"num_styles={config.num_styles}, num_experts={config.num_experts} need {shape}"
                )


def _shapes_of(unet_or_shapes: torch.nn.Module | Mapping[str, Any], names: list[str]) -> dict[str, tuple | None]:
    if not isinstance(unet_or_shapes, torch.nn.Module):
        shapes = {}
        for key, value in unet_or_shapes.items():
            if key.endswith(".bias"):
                continue
            shapes[key.removesuffix(".weight").replace(".base_layer", "")] = tuple(
                value.shape if hasattr(value, "shape") else value
            )
        return {name: shapes.get(name) for name in names}
    result: dict[str, tuple | None] = {}
    for name in names:
        try:
            module = unet_or_shapes.get_submodule(name)
        except AttributeError:
            result[name] = None
            continue
        while hasattr(module, "base_layer"):  # PEFT layers (LoRA, StyleInject) keep the original as base_layer
            module = module.base_layer
        weight = getattr(module, "weight", None)
        result[name] = tuple(weight.shape) if isinstance(weight, torch.Tensor) else None
    return result


def check_style_inject_fits(expert: StyleInjectExpert, unet: torch.nn.Module | Mapping[str, Any]) -> None:
    """Raise ValueError unless every module of `expert` exists in `unet` with the weight shape its tensors adapt.

    `unet` is a diffusers UNet (adapters on or not) or a mapping of module or parameter names to tensors or shapes.
    The error names the first module (in natural order) that does not fit, and both shapes."""
    names = expert.module_names
    found = _shapes_of(unet, names)
    base = expert.metadata.get("base_model", "unknown")
    advice = (
        f"The expert was trained for another architecture (its base model: {base}); load it onto the model family "
        "it was trained for (an SD1.x expert onto an SD1.x checkpoint, SDXL onto SDXL)."
    )
    for name in names:
        expected = base_weight_shape(name, expert.module_tensors(name))
        if found[name] is None:
            raise ValueError(
                f"The StyleInject expert does not fit this UNet: its module {name!r} (weight shape {expected}) does "
                f"not exist in the model (model shape: none, no such module). {advice}"
            )
        if found[name] != expected:
            raise ValueError(
                f"The StyleInject expert does not fit this UNet: module {name!r} has weight shape {expected} in the "
                f"expert but {found[name]} in the model. {advice}"
            )


# --------------------------------------------------------------------------------------------------- reading


def _config_from_json(text: str, path: Path) -> StyleInjectConfig:
    from ..tuners.style_inject import StyleInjectConfig

    try:
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(StyleInjectConfig)}
        # Fields a newer PEFT or comfyui-selma added are dropped; a changed meaning would come with a new format.
        return StyleInjectConfig(**{k: v for k, v in data.items() if k in known})
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: its StyleInject config cannot be read ({e}); the file is damaged") from None


def load_style_inject_expert(path: str | Path) -> StyleInjectExpert:
    """Read a StyleInject expert file (see the module docstring); checks its tensors against its config."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no expert file at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = dict(f.metadata() or {})
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except SafetensorError as e:
        raise ValueError(f"{path} is not a readable .safetensors file ({e}); re-save or re-download it") from None
    found = header.get("selma.format")
    if found != FORMAT:
        method = header.get("selma.method", "lora" if found is None else "unknown")
        hint = (
            "load LoRA experts with selma.experts.load_lora_expert (ComfyUI: SELMA Load Expert or LoraLoader)"
            if method == "lora"
            else "it may need a newer comfyui-selma"
        )
        raise ValueError(f"{path} is not a StyleInject expert (format {found!r}, method {method!r}); {hint}")
    if f"selma.{CONFIG_KEY}" not in header:
        raise ValueError(f"{path} has no selma.{CONFIG_KEY} in its header; the file is damaged")
    config = _config_from_json(header[f"selma.{CONFIG_KEY}"], path)
    check_tensors(tensors, config, str(path))
    check_finite(tensors, path)
    metadata = decode_metadata(header, skip=(CONFIG_KEY,))
    ordered = {key: tensors[key] for key in sorted(tensors, key=natural_key)}
    return StyleInjectExpert(config=config, tensors=ordered, metadata=metadata)


# --------------------------------------------------------------------------------------------------- on a UNet


def exact_names_pattern(names: list[str]) -> str:
    """A regex PEFT full-matches against module names that selects exactly `names`."""
    return "(?:" + "|".join(re.escape(name) for name in names) + ")"


def apply_style_inject_expert(
    unet: torch.nn.Module,
    expert: StyleInjectExpert,
    adapter_name: str = DEFAULT_ADAPTER_NAME,
    strength: float = 1.0,
) -> torch.nn.Module:
    """Add `expert` to a diffusers UNet as StyleInject adapter `adapter_name` on exactly its modules, with its exact
    tensors, made active; `strength` multiplies the update and γ (0 = the base model). Returns `unet`."""
    from peft import inject_adapter_in_model

    from ..tuners.style_inject import load_style_inject_state_dict, style_inject_layers

    if isinstance(strength, bool) or not isinstance(strength, int | float) or not math.isfinite(strength):
        raise ValueError(f"strength must be a finite number (1 = as trained, 0 = off), got {strength!r}")
    check_style_inject_fits(expert, unet)
    if adapter_name in (getattr(unet, "peft_config", None) or {}):
        raise ValueError(
            f"the UNet already has an adapter named {adapter_name!r}; pass another adapter_name or remove it first "
            f"(unet.delete_adapters({adapter_name!r}))"
        )
    config = dataclasses.replace(
        expert.config,
        target_modules=exact_names_pattern(expert.module_names),
        exclude_modules=None,
        init_weights=True,  # overwritten below; zeros are the cheapest init
    )
    if hasattr(unet, "add_adapter"):  # a diffusers model: register it so set_adapters / delete_adapters know it
        unet.add_adapter(config, adapter_name=adapter_name)
    else:
        inject_adapter_in_model(config, unet, adapter_name=adapter_name)
    load_style_inject_state_dict(unet, expert.tensors, adapter_name)
    for layer in style_inject_layers(unet).values():
        layer.set_scale(adapter_name, strength)
    log.debug("applied a StyleInject expert of %d modules as adapter %r", len(expert.module_names), adapter_name)
    return unet
