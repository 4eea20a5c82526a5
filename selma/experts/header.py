"""The `selma.*` header fields of an expert file: how metadata values are written into safetensors' header
(which holds strings only) and read back. Shared by LoRA and StyleInject expert files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

PREFIX = "selma."
PLAIN_STRINGS = ("method", "skill", "base_model", "version", "format")  # written as is; everything else as JSON


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
