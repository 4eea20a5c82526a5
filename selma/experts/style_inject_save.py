"""Writing a StyleInject expert file (the format of `style_inject_files`): `save_style_inject_expert`."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .. import __version__
from ..atomic_files import write_bytes_atomic
from ..models.unet_names import DIFFUSERS_TOP_NAMES
from .dit_lora_files import is_dit_name
from .header import encode_metadata, tensor_for_file
from .lora_peft import _unwrapped_name
from .style_inject_files import CONFIG_KEY, FORMAT, METHOD, StyleInjectExpert, check_tensors, natural_key, split_key

if TYPE_CHECKING:
    from ..tuners.style_inject import StyleInjectConfig

log = logging.getLogger(__name__)


def _header(config: StyleInjectConfig, metadata: Mapping[str, Any]) -> dict[str, str]:
    if metadata.get("method", METHOD) != METHOD:
        raise ValueError(
            f"metadata['method'] is {metadata['method']!r}; a StyleInject expert file is method {METHOD!r}"
        )
    # "format", "version" and the config describe the file being written (and its config argument): set below
    header = encode_metadata(metadata, skip=("format", "version", CONFIG_KEY))
    header["selma.format"] = FORMAT
    header["selma.method"] = METHOD
    header["selma.version"] = __version__
    header[f"selma.{CONFIG_KEY}"] = json.dumps(config.to_json_dict(), sort_keys=True)
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
        if name.split(".", 1)[0] not in DIFFUSERS_TOP_NAMES and not is_dit_name(name):
            raise ValueError(
                f"module {name!r} is not a diffusers UNet module name (down_blocks..., mid_block..., up_blocks...) "
                "nor a FLUX / SD3 transformer one (transformer_blocks..., single_transformer_blocks...); name modules "
                "as the model's named_modules() does (a ComfyUI diffusion_model's names map with "
                "selma.models.unet_names.ldm_to_diffusers)"
            )
    tensors = {key: tensor_for_file(state[key]) for key in sorted(state, key=natural_key)}
    write_bytes_atomic(path, save(tensors, metadata=_header(config, metadata or {})))
    log.info("saved a StyleInject expert of %d modules to %s", len({split_key(k)[0] for k in tensors}), path)
    return path
