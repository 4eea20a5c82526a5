"""LoRA expert files for the DiT families, FLUX.1 and SD3/SD3.5.

Keys are diffusers' own LoRA format over the transformer's module names, `transformer.<name>.lora_A.weight` (down)
and `.lora_B.weight` (up): diffusers `load_lora_weights` reads them for both families, and stock ComfyUI LoraLoader
maps them onto its FLUX / MMDiT weights (fused qkv included). There are no `.alpha` keys: diffusers' SD3 loader
refuses them, so each module's alpha / r is folded into lora_B and every loader applies the same update at scale 1
(read back, a module has alpha = r and the same ΔW). The header is the UNet experts' `selma.*` header plus
`selma.family` ("flux" or "sd3"), which the merge checks.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..atomic_files import write_bytes_atomic
from .header import LORA_FORMAT, decode_metadata, selma_header, tensor_for_file
from .lora_expert import LoraExpert, LoraModule

logger = logging.getLogger(__name__)

DIT_FAMILIES = ("flux", "sd3")
PREFIX = "transformer."
# the top-level modules of FluxTransformer2DModel and SD3Transformer2DModel
DIT_TOP_NAMES = (
    "transformer_blocks",
    "single_transformer_blocks",
    "x_embedder",
    "context_embedder",
    "time_text_embed",
    "pos_embed",
    "norm_out",
    "proj_out",
)
_FACTORS = {".lora_A.weight": "down", ".lora_B.weight": "up"}


def is_dit_name(name: str) -> bool:
    return name.split(".", 1)[0] in DIT_TOP_NAMES


def is_dit_file(tensors: Mapping[str, torch.Tensor], header: Mapping[str, str]) -> bool:
    """Ours with a DiT family in the header, or a foreign diffusers-format file over transformer module names."""
    if header.get("selma.family") in DIT_FAMILIES:
        return True
    return bool(tensors) and all(key.startswith(PREFIX) for key in tensors)


def dit_state_dict(expert: LoraExpert) -> dict[str, torch.Tensor]:
    if not expert.modules:
        raise ValueError("the expert has no modules; there is nothing to save")
    tensors = {}
    for name, module in expert.modules.items():
        if not is_dit_name(name):
            raise ValueError(
                f"module {name!r} is not a FLUX / SD3 transformer module name (transformer_blocks..., "
                "single_transformer_blocks...); name modules as in the transformer's named_modules()"
            )
        up = module.up if module.scale == 1 else (module.up.float() * module.scale).to(module.up.dtype)
        tensors[f"{PREFIX}{name}.lora_A.weight"] = tensor_for_file(module.down)
        tensors[f"{PREFIX}{name}.lora_B.weight"] = tensor_for_file(up)
    return tensors


def save_dit_lora_expert(path: Path, expert: LoraExpert, metadata: Mapping[str, Any]) -> Path:
    """Write a DiT expert (`metadata["family"]` is "flux" or "sd3") atomically; see the module docstring."""
    from safetensors.torch import save

    family = metadata.get("family")
    if family not in DIT_FAMILIES:
        raise ValueError(f"family={family!r}: DiT experts are one of {DIT_FAMILIES}")
    tensors = dit_state_dict(expert)
    header = selma_header(metadata, LORA_FORMAT)
    rank = Counter(module.rank for module in expert.modules.values()).most_common(1)[0][0]
    header["ss_network_module"] = "networks.lora"
    header["ss_network_dim"] = header["ss_network_alpha"] = str(rank)  # alpha / r is folded into lora_B
    header["ss_base_model_version"] = {"flux": "flux1", "sd3": "sd3"}[family]
    write_bytes_atomic(path, save(tensors, metadata=header))
    logger.info("saved a %s LoRA expert of %d modules to %s", family, len(expert.modules), path)
    return path


def read_dit_lora(tensors: Mapping[str, torch.Tensor], header: Mapping[str, str], path: Path) -> LoraExpert:
    factors: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        suffix = next((s for s in _FACTORS if key.endswith(s)), None)
        if not key.startswith(PREFIX) or suffix is None:
            raise ValueError(
                f"{path}: key {key!r} is not a diffusers DiT LoRA key (transformer.<module>.lora_A.weight / "
                ".lora_B.weight); alpha keys, other spellings and text-encoder parts are not read"
            )
        factors.setdefault(key[len(PREFIX) : -len(suffix)], {})[_FACTORS[suffix]] = tensor
    modules = {}
    for name, found in factors.items():
        missing = {"down", "up"} - set(found)
        if missing:
            raise ValueError(f"{path}: module {name!r} has no {missing.pop()} factor; the file is incomplete")
        modules[name] = LoraModule(down=found["down"], up=found["up"], alpha=float(found["down"].shape[0]))
    if "selma.format" in header:
        metadata = decode_metadata(header)
    else:
        metadata = {"source_format": "diffusers-dit", "file_metadata": dict(header)}
        metadata["family"] = "flux" if any(name.startswith("single_transformer_blocks") for name in modules) else None
    return LoraExpert(modules=modules, metadata=metadata)
