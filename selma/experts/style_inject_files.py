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

from .. import __version__
from ..atomic_files import write_bytes_atomic
from ..models.unet_names import DIFFUSERS_TOP_NAMES
from .header import decode_metadata, encode_metadata
from .lora_peft import _unwrapped_name

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
_CONFIG_KEY = "styleinject_config"


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def natural_sorted(names) -> list[str]:
    """Module names in natural order (`down_blocks.2` before `down_blocks.10`), as files and experts list them."""
    return sorted(names, key=_natural_key)


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
        return sorted({split_key(key)[0] for key in self.tensors}, key=_natural_key)

    def module_tensors(self, name: str) -> dict[str, torch.Tensor]:
        """One module's tensors by part (``styleinject_down``, ``styleinject_router.weight``, ...)."""
        return {part: self.tensors[f"{name}.{part}"] for part in PARTS if f"{name}.{part}" in self.tensors}

    @property
    def parameter_count(self) -> int:
        return sum(t.numel() for t in self.tensors.values())


# --------------------------------------------------------------------------------------------------- checks


def base_weight_shape(name: str, parts: Mapping[str, torch.Tensor]) -> tuple[int, ...]:
    """The weight shape of the base layer a module's tensors adapt: [out, in] (Linear) or [out, in, kh, kw]."""
    down, up = parts["styleinject_down"], parts["styleinject_up"]
    if down.dim() == 3 and up.dim() == 2:
        return (up.shape[0], down.shape[2])
    if down.dim() == 5 and up.dim() == 4:
        return (up.shape[0], down.shape[2], *down.shape[3:])
    raise ValueError(
        f"module {name!r}: styleinject_down {tuple(down.shape)} with styleinject_up {tuple(up.shape)} is neither a "
        "Linear ([K·n, r, in] with [out, K·r]) nor a Conv2d ([K·n, r, in, kh, kw] with [out, K·r, 1, 1]) adapter"
    )


def _expected_shapes(parts: Mapping[str, torch.Tensor], config: StyleInjectConfig, name: str) -> dict[str, tuple]:
    k, n, r = config.num_experts, config.num_styles, config.r
    base = base_weight_shape(name, parts)
    out, width, kernel = base[0], base[1], base[2:]
    one_by_one = (1, 1) if kernel else ()
    shapes = {"styleinject_down": (k * n, r, width, *kernel), "styleinject_up": (out, k * r, *one_by_one)}
    if config.use_dma:
        shapes["styleinject_router.weight"] = (k * n, width, *one_by_one)
        shapes["styleinject_router.bias"] = (k * n,)
    if config.use_sta:
        shapes["styleinject_hyper.weight"] = (k * out, n)
        shapes["styleinject_hyper.bias"] = (k * out,)
    return shapes


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
    for name in sorted(modules, key=_natural_key):
        parts = modules[name]
        for needed in ("styleinject_down", "styleinject_up"):
            if needed not in parts:
                raise ValueError(f"{source}: module {name!r} has no {needed}; the file is incomplete")
        expected = _expected_shapes(parts, config, name)
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


# --------------------------------------------------------------------------------------------------- files


def _tensor_for_file(tensor: torch.Tensor) -> torch.Tensor:
    tensor = tensor.detach().to("cpu").contiguous()
    if tensor.untyped_storage().nbytes() != tensor.nbytes:
        tensor = tensor.clone()  # a view into a larger buffer: safetensors refuses shared storage
    return tensor


def _header(config: StyleInjectConfig, metadata: Mapping[str, Any]) -> dict[str, str]:
    if metadata.get("method", METHOD) != METHOD:
        raise ValueError(
            f"metadata['method'] is {metadata['method']!r}; a StyleInject expert file is method {METHOD!r}"
        )
    # "format", "version" and the config describe the file being written (and its config argument): set below
    header = encode_metadata(metadata, skip=("format", "version", _CONFIG_KEY))
    header["selma.format"] = FORMAT
    header["selma.method"] = METHOD
    header["selma.version"] = __version__
    header[f"selma.{_CONFIG_KEY}"] = json.dumps(config.to_json_dict(), sort_keys=True)
    return header


def save_style_inject_expert(
    path: str | Path,
    model_or_state: torch.nn.Module | Mapping[str, torch.Tensor] | StyleInjectExpert,
    config: StyleInjectConfig,
    metadata: Mapping[str, Any] | None = None,
    *,
    adapter_name: str = "default",
) -> Path:
    """Write a StyleInject expert to one ``.safetensors`` file, atomically; tensors keep their dtype.

    `model_or_state`: a diffusers UNet holding adapter `adapter_name`, its `style_inject_state_dict`, or a
    `StyleInjectExpert` (whose metadata `metadata` is merged over). `config` is the adapter's config; `metadata`
    goes into the header (``skill``, ``base_model``, ``steps``, ``config`` = the training config, anything JSON-able).
    """
    from safetensors.torch import save

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"expert files end in .safetensors (ComfyUI lists only those in models/loras), got {path}")
    if isinstance(model_or_state, StyleInjectExpert):
        metadata = {**model_or_state.metadata, **(metadata or {})}
        state: Mapping[str, torch.Tensor] = model_or_state.tensors
    elif isinstance(model_or_state, torch.nn.Module):
        from ..tuners.style_inject import style_inject_state_dict

        state = {_unwrapped_name(k): v for k, v in style_inject_state_dict(model_or_state, adapter_name).items()}
    else:
        state = model_or_state
    check_tensors(state, config)
    for key in state:
        name = split_key(key)[0]
        if name.split(".", 1)[0] not in DIFFUSERS_TOP_NAMES:
            raise ValueError(
                f"module {name!r} is not a diffusers UNet module name (down_blocks..., mid_block..., up_blocks...); "
                "experts hold UNet modules only, named as in UNet2DConditionModel.named_modules() (a ComfyUI "
                "diffusion_model's names map with selma.models.unet_names.ldm_to_diffusers)"
            )
    tensors = {key: _tensor_for_file(state[key]) for key in sorted(state, key=_natural_key)}
    write_bytes_atomic(path, save(tensors, metadata=_header(config, metadata or {})))
    log.info("saved a StyleInject expert of %d modules to %s", len({split_key(k)[0] for k in tensors}), path)
    return path


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
    if f"selma.{_CONFIG_KEY}" not in header:
        raise ValueError(f"{path} has no selma.{_CONFIG_KEY} in its header; the file is damaged")
    config = _config_from_json(header[f"selma.{_CONFIG_KEY}"], path)
    check_tensors(tensors, config, str(path))
    metadata = decode_metadata(header, skip=(_CONFIG_KEY,))
    ordered = {key: tensors[key] for key in sorted(tensors, key=_natural_key)}
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
    return StyleInjectExpert(config=config, tensors=dict(sorted(tensors.items(), key=lambda kv: _natural_key(kv[0]))))
