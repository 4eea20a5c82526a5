"""The `selma.*` header fields of an expert file: how metadata values are written into safetensors' header
(which holds strings only) and read back, and the tensors as written. Shared by LoRA and StyleInject expert files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

PREFIX = "selma."
LORA_FORMAT = "lora/1"  # LoRA experts, UNet (kohya keys) and DiT (diffusers keys) alike
# written as is; everything else as JSON
PLAIN_STRINGS = ("method", "skill", "base_model", "family", "version", "format")


def encode_metadata(metadata: Mapping[str, Any], skip: Iterable[str] = ("format", "version")) -> dict[str, str]:
    """`{"selma.<key>": str}` for every entry but `skip` (fields that describe the file being written, which the
    caller sets itself): the plain-string fields as they are, every other value as JSON."""
    skip = set(skip)
    header = {}
    for key, value in metadata.items():
        if key in skip:
            continue
        if key in PLAIN_STRINGS:
            if not isinstance(value, str):
                raise ValueError(f"metadata[{key!r}] must be a string, got {type(value).__name__} {value!r}")
            header[PREFIX + key] = value
            continue
        try:
            header[PREFIX + key] = json.dumps(value, sort_keys=True)
        except TypeError as e:
            raise ValueError(
                f"metadata[{key!r}] cannot be written as JSON ({e}); pass plain str/int/float/list/dict values"
            ) from None
    return header


def decode_metadata(header: Mapping[str, str], skip: Iterable[str] = ()) -> dict[str, Any]:
    """The metadata of `selma.*` header fields (the inverse of `encode_metadata`); other fields are ignored."""
    skip = set(skip)
    metadata: dict[str, Any] = {}
    for key, value in header.items():
        name = key[len(PREFIX) :]
        if key.startswith(PREFIX) and name not in skip:
            metadata[name] = value if name in PLAIN_STRINGS else json.loads(value)
    return metadata


def selma_header(metadata: Mapping[str, Any], file_format: str) -> dict[str, str]:
    """The `selma.*` header of a LoRA expert file: the metadata, the method (default "lora"), format and version."""
    from .. import __version__

    header = encode_metadata(metadata)  # "format"/"version" describe the file being written, set here
    header.setdefault(PREFIX + "method", "lora")
    header[PREFIX + "format"] = file_format
    header[PREFIX + "version"] = __version__
    return header


def tensor_for_file(tensor: torch.Tensor) -> torch.Tensor:
    """A CPU tensor safetensors can write (contiguous, not a view into a larger buffer)."""
    tensor = tensor.detach().to("cpu").contiguous()
    if tensor.untyped_storage().nbytes() != tensor.nbytes:
        tensor = tensor.clone()  # a view into a larger buffer: safetensors refuses shared storage
    return tensor
