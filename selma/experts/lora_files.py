"""LoRA expert files: one self-describing ``.safetensors`` per expert, readable by ComfyUI, diffusers and A1111/Forge.

Keys are kohya-style over diffusers module names (``lora_unet_<name with . -> _>.lora_down.weight`` /
``.lora_up.weight`` / ``.alpha``), which stock ComfyUI ``LoraLoader``, diffusers ``load_lora_weights`` and A1111
all map (ComfyUI ignores UNet attention keys in PEFT or new-diffusers form, so those are never written). The header
holds ``selma.*`` fields (format, method, skill, config, base model fingerprint, steps, version, and any other
metadata as JSON) plus kohya's ``ss_network_*`` fields.

`load_lora_expert` also reads the common foreign forms of SD-UNet LoRA files (kohya keys over diffusers or LDM
names, PEFT ``lora_A``/``lora_B``, diffusers ``.lora.down``/``.lora.up`` and attention-processor keys) into the same
in-memory form; text-encoder parts are skipped with a warning, since experts adapt the UNet only.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..atomic_files import write_bytes_atomic
from ..models.unet_names import (
    DIFFUSERS_TOP_NAMES,
    UnetLayout,
    diffusers_to_ldm,
    dotted_name,
    guess_ldm_family,
    is_ldm_name,
    ldm_to_diffusers,
)
from .dit_lora_files import DIT_FAMILIES, is_dit_file, read_dit_lora, save_dit_lora_expert
from .finite import check_finite
from .header import LORA_FORMAT, decode_metadata, selma_header, tensor_for_file
from .lora_expert import LoraExpert, LoraModule
from .lora_peft import apply_lora_expert, check_expert_fits, fingerprint_unet, lora_expert_from_peft

__all__ = [
    "FORMAT",
    "apply_lora_expert",
    "check_expert_fits",
    "expert_to_ldm_names",
    "fingerprint_unet",
    "load_lora_expert",
    "lora_expert_from_peft",
    "save_lora_expert",
]

logger = logging.getLogger(__name__)

FORMAT = LORA_FORMAT
_FORMAT_KEY = "selma.format"
_KOHYA_PREFIX = "lora_unet_"
# metadata fields written as plain strings; every other field is written as JSON (and read back as such).
_CROSS_ATTENTION_WIDTH_TO_KOHYA = {768: {"ss_v2": "False"}, 1024: {"ss_v2": "True"}, 2048: {}}


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


# --------------------------------------------------------------------------------------------------- saving


def _header(expert: LoraExpert, metadata: Mapping[str, Any]) -> dict[str, str]:
    header = selma_header(metadata, FORMAT)
    # kohya's fields, read by A1111/Forge to list and filter LoRAs; per-module values live in the .alpha tensors.
    modules = list(expert.modules.values())
    header["ss_network_module"] = "networks.lora"
    header["ss_network_dim"] = str(Counter(m.rank for m in modules).most_common(1)[0][0])
    header["ss_network_alpha"] = str(float(Counter(m.alpha for m in modules).most_common(1)[0][0]))  # as written
    header.update(_kohya_base_model_fields(expert))
    return header


def _kohya_base_model_fields(expert: LoraExpert) -> dict[str, str]:
    """A1111 treats a LoRA with metadata but no SDXL marker as SD1; say SDXL / SD2 when the shapes show it."""
    for name, module in expert.modules.items():
        if name.endswith(("attn2.to_k", "attn2.to_v")):
            width = module.in_features
            if width == 2048:
                return {"ss_base_model_version": "sdxl_base_v1-0"}
            return _CROSS_ATTENTION_WIDTH_TO_KOHYA.get(width, {})
    return {}


def kohya_state_dict(expert: LoraExpert) -> dict[str, torch.Tensor]:
    """The expert as kohya-keyed tensors (`lora_unet_<name>.lora_down/.lora_up/.alpha`), as written to files and
    as ComfyUI's own LoRA loader consumes them. One alpha for all modules: see `save_lora_expert`."""
    if not expert.modules:
        raise ValueError("the expert has no modules; there is nothing to save")
    # One alpha for the whole file: diffusers (0.42) loses per-module alphas of kohya attention keys, so a module
    # with another alpha carries the ratio in its up factor instead (same update ΔW = alpha/r · up @ down).
    alpha = Counter(m.alpha for m in expert.modules.values()).most_common(1)[0][0]
    tensors: dict[str, torch.Tensor] = {}
    for name, module in expert.modules.items():
        if name.split(".", 1)[0] not in DIFFUSERS_TOP_NAMES:
            raise ValueError(
                f"module {name!r} is not a diffusers UNet module name (down_blocks..., mid_block..., up_blocks...); "
                "experts hold UNet modules only, named as in UNet2DConditionModel.named_modules()"
            )
        if not math.isfinite(module.alpha):
            raise ValueError(f"module {name!r} has alpha {module.alpha!r}; alpha must be a finite number")
        up = module.up
        if module.alpha != alpha and alpha != 0:
            up = (up.float() * (module.alpha / alpha)).to(up.dtype)
        key = _KOHYA_PREFIX + name.replace(".", "_")
        tensors[f"{key}.lora_down.weight"] = tensor_for_file(module.down)
        tensors[f"{key}.lora_up.weight"] = tensor_for_file(up)
        tensors[f"{key}.alpha"] = torch.tensor(float(alpha if alpha != 0 else module.alpha), dtype=torch.float32)
    return tensors


def save_lora_expert(path: str | Path, expert: LoraExpert, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write `expert` to one ``.safetensors`` file, atomically. Tensors keep their dtype (fp16 or fp32).

    `metadata` (merged over ``expert.metadata``) goes into the header: ``skill``, ``method`` (default "lora"),
    ``config`` (a dict), ``base_model`` (see `fingerprint_unet`), ``steps``, and any other JSON-able entries.
    The file has one alpha (the most common): modules with another alpha are written with the ratio folded into
    their up factor, so every loader computes the same update; experts with one alpha round-trip bit for bit.
    """
    from safetensors.torch import save

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"expert files end in .safetensors (ComfyUI lists only those in models/loras), got {path}")
    metadata = {**expert.metadata, **(metadata or {})}
    if metadata.get("family") in DIT_FAMILIES:  # FLUX / SD3: diffusers' own keys, see dit_lora_files
        return save_dit_lora_expert(path, expert, metadata)
    tensors = kohya_state_dict(expert)
    header = _header(expert, metadata)
    write_bytes_atomic(path, save(tensors, metadata=header))
    logger.info("saved a LoRA expert of %d modules to %s", len(expert.modules), path)
    return path


# --------------------------------------------------------------------------------------------------- loading

# key suffix -> the factor it holds, across kohya, PEFT and diffusers spellings
_PARTS = (
    (".lora_down.weight", "down"),
    (".lora_up.weight", "up"),
    (".lora_A.weight", "down"),
    (".lora_B.weight", "up"),
    (".lora.down.weight", "down"),
    (".lora.up.weight", "up"),
    (".alpha", "alpha"),
)
_UNSUPPORTED = (
    ("dora_scale", "DoRA"),
    ("lora_magnitude_vector", "DoRA"),
    ("hada_", "LoHa (LyCORIS)"),
    ("lokr_", "LoKr (LyCORIS)"),
    ("lora_mid", "LoCon with Tucker decomposition (LyCORIS)"),
    (".lora_A.bias", "LoRA with bias"),
    (".lora_B.bias", "LoRA with bias"),
)
_TEXT_ENCODER_PREFIXES = ("lora_te_", "lora_te1_", "lora_te2_", "lora_te3_", "text_encoder.", "text_encoder_2.", "te.")
# name prefixes that foreign tools put before the UNet module name
_DOTTED_PREFIXES = ("base_model.model.", "unet.", "model.diffusion_model.", "diffusion_model.")
# diffusers' old attention-processor keys: attn1.processor.to_q_lora.down.weight
_PROCESSOR = re.compile(r"\.processor\.(to_q|to_k|to_v|to_out)_lora$")


def _split_key(key: str) -> tuple[str, str] | None:
    for suffix, part in _PARTS:
        if key.endswith(suffix):
            return key[: -len(suffix)], part
    for suffix, part in ((".down.weight", "down"), (".up.weight", "up")):
        if key.endswith(suffix) and _PROCESSOR.search(key[: -len(suffix)]):
            return key[: -len(suffix)], part
    return None


def _module_name(prefix: str) -> tuple[str, str]:
    """(spelling, module name) of a key prefix; the spelling ends up in a foreign file's metadata."""
    if prefix.startswith(_KOHYA_PREFIX):
        return "kohya", dotted_name(prefix[len(_KOHYA_PREFIX) :])
    for dotted_prefix in _DOTTED_PREFIXES:
        if prefix.startswith(dotted_prefix):
            prefix = prefix[len(dotted_prefix) :]
            break
    processor = _PROCESSOR.search(prefix)
    if processor:
        target = "to_out.0" if processor.group(1) == "to_out" else processor.group(1)
        return "diffusers-attn-processor", prefix[: processor.start()] + "." + target
    return "dotted", prefix


def _collect_factors(tensors: Mapping[str, torch.Tensor], path: Path) -> tuple[dict[str, dict], set[str]]:
    """module name (as spelled in the file) -> {"down", "up", "alpha"} tensors, and the key spellings seen."""
    factors: dict[str, dict[str, torch.Tensor]] = {}
    spellings: set[str] = set()
    skipped = 0
    for key, tensor in tensors.items():
        if key.startswith(_TEXT_ENCODER_PREFIXES):
            skipped += 1
            continue
        split = _split_key(key)
        if split is None:
            for marker, kind in _UNSUPPORTED:
                if marker in key:
                    raise ValueError(f"{path} is a {kind} file (key {key!r}); only plain LoRA experts are supported")
            raise ValueError(
                f"{path}: key {key!r} is not a LoRA key we know (expected <module>.lora_down.weight / .lora_up.weight "
                "/ .alpha, or PEFT lora_A / lora_B); is this a LoRA for an SD-family UNet?"
            )
        spelling, name = _module_name(split[0])
        if key.endswith((".lora_A.weight", ".lora_B.weight")):
            spelling = "peft"
        elif key.endswith((".lora.down.weight", ".lora.up.weight")):
            spelling = "diffusers"
        spellings.add(spelling + ("+ldm-names" if is_ldm_name(name) else ""))
        factors.setdefault(name, {})[split[1]] = tensor
    if skipped:
        logger.warning("%s: skipped %d text-encoder keys (experts adapt the UNet only)", path, skipped)
    if not factors:
        raise ValueError(f"{path} holds no UNet LoRA weights (only {skipped} text-encoder keys)")
    return factors, spellings


def _open(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise FileNotFoundError(f"no expert file at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {key: f.get_tensor(key) for key in f.keys()}, dict(f.metadata() or {})
    except SafetensorError as e:
        raise ValueError(
            f"{path} is not a readable .safetensors file ({e}); LoRA experts must be safetensors "
            "(convert .pt/.ckpt LoRAs first, or re-download a truncated file)"
        ) from None


def _peft_alphas(header: Mapping[str, str], path: Path) -> tuple[float, dict, bool] | None:
    """(lora_alpha, alpha_pattern, use_rslora) from diffusers' header or a PEFT folder's adapter_config.json."""
    config = None
    if "lora_adapter_metadata" in header:  # diffusers save_lora_weights(..., unet_lora_adapter_metadata=...)
        raw = json.loads(header["lora_adapter_metadata"])
        config = {k.removeprefix("unet."): v for k, v in raw.items() if k.startswith("unet.")}
    elif (path.parent / "adapter_config.json").is_file():  # PEFT save_pretrained folder
        config = json.loads((path.parent / "adapter_config.json").read_text(encoding="utf-8"))
    if not config or "lora_alpha" not in config:
        return None
    return float(config["lora_alpha"]), config.get("alpha_pattern") or {}, bool(config.get("use_rslora"))


def _pattern_value(patterns: Mapping[str, Any], name: str, default: Any) -> Any:
    for pattern, value in patterns.items():  # PEFT's rule: the pattern matches a dotted suffix of the name
        if re.match(rf"(.*\.)?({pattern})$", name):
            return value
    return default


def load_lora_expert(path: str | Path, unet_config: Any = None) -> LoraExpert:
    """Read a LoRA file for an SD-family UNet into a LoraExpert over diffusers module names.

    Reads our files and foreign ones (see the module docstring). `unet_config` (a diffusers or ComfyUI UNet config,
    or the UNet) is needed only for files over LDM names of a model other than SD1.x/SD2.x/SDXL. Raises ValueError
    with the reason for files that are not safetensors, hold no UNet LoRA, or are incomplete.
    """
    path = Path(path)
    tensors, header = _open(path)
    check_finite(tensors, path)
    selma_format = header.get(_FORMAT_KEY)
    if header.get("selma.method") == "styleinject":
        raise ValueError(
            f"{path} is a StyleInject expert, not a LoRA expert; load it with "
            "selma.experts.load_style_inject_expert (apply it with apply_style_inject_expert; in ComfyUI: "
            "SELMA Load StyleInject)"
        )
    if selma_format is not None and selma_format != FORMAT:
        raise ValueError(
            f"{path} is a selma expert of format {selma_format!r}, not a LoRA expert ({FORMAT!r}); "
            "StyleInject experts load with the StyleInject loader, newer formats need a newer comfyui-selma"
        )
    if is_dit_file(tensors, header):
        return read_dit_lora(tensors, header, path)
    factors, spellings = _collect_factors(tensors, path)
    names = _to_diffusers_names(list(factors), unet_config, path)
    peft_alphas = _peft_alphas(header, path)
    modules = {}
    for name in sorted(factors, key=lambda n: _natural_key(names[n])):
        found, diffusers_name = factors[name], names[name]
        for needed, other in (("up", "down"), ("down", "up")):
            if needed not in found:
                raise ValueError(
                    f"{path}: module {name!r} has a {other} factor but no {needed} factor; the file is incomplete"
                )
        rank = found["down"].shape[0]
        if "alpha" in found:
            alpha = float(found["alpha"].item())
        elif peft_alphas is not None:
            lora_alpha, alpha_pattern, rslora = peft_alphas
            alpha = float(_pattern_value(alpha_pattern, diffusers_name, lora_alpha))
            if rslora:  # scaling = alpha / sqrt(r); keep it as the equivalent plain alpha
                alpha *= rank**0.5
        else:
            alpha = float(rank)  # every loader's convention: no alpha means scale 1
        try:
            modules[diffusers_name] = LoraModule(down=found["down"], up=found["up"], alpha=alpha)
        except ValueError as e:
            raise ValueError(f"{path}: module {name!r}: {e}") from None
    if selma_format is not None:
        metadata = _metadata_from_header(header)
    else:
        metadata = {"source_format": "+".join(sorted(spellings)), "file_metadata": header}
    return LoraExpert(modules=modules, metadata=metadata)


_CLASS_EMBEDDING = "class_embedding."


def _to_diffusers_names(names: list[str], unet_config: Any, path: Path) -> dict[str, str]:
    ldm = [name for name in names if is_ldm_name(name)]
    layout = None
    if ldm:
        if unet_config is not None:
            layout = UnetLayout.from_config(unet_config)
        else:
            family, layout = guess_ldm_family(ldm)
            logger.info("%s uses LDM module names; read them with the %s UNet layout", path, family)
    result = {}
    for name in names:
        converted = ldm_to_diffusers(name, layout) if is_ldm_name(name) else name
        if converted.startswith(_CLASS_EMBEDDING):  # ComfyUI maps both to label_emb (the SDXL/unCLIP class input)
            converted = "add_embedding." + converted[len(_CLASS_EMBEDDING) :]
        if converted.split(".", 1)[0] not in DIFFUSERS_TOP_NAMES:
            raise ValueError(
                f"{path}: module {name!r} is not part of an SD-family UNet (SD1.x, SD2.x, SDXL); "
                "is this a LoRA for another model (Flux, SD3, a transformer)?"
            )
        result[name] = converted
    return result


def _metadata_from_header(header: Mapping[str, str]) -> dict[str, Any]:
    return decode_metadata(header)  # ss_* fields are derived from the tensors on every save


# --------------------------------------------------------------------------------------------------- ComfyUI names


def expert_to_ldm_names(expert: LoraExpert, unet_config: Any) -> dict[str, LoraModule]:
    """The expert's modules keyed by LDM names (``input_blocks.1.1.transformer_blocks.0.attn1.to_q``), for the
    UNet `unet_config` describes (a diffusers config or ComfyUI's ``model.model_config.unet_config``); ComfyUI's
    weight key of a module is ``diffusion_model.<ldm name>.weight``."""
    layout = UnetLayout.from_config(unet_config)
    return {diffusers_to_ldm(name, layout): module for name, module in expert.modules.items()}
