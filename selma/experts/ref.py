"""What a SELMA_EXPERT socket carries between nodes: an expert file, and the expert once it has been read.

Nodes that train, load or merge experts pass an `ExpertRef`; whoever needs the factors calls `.load()`, which
reads the file the first time only. Only the header is read to make a reference, so a graph can pass many
experts around cheaply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a reference (and its header) needs no torch
    from .lora_expert import LoraExpert

LORA_METHOD = "lora"
STYLE_INJECT_METHOD = "styleinject"  # `selma.experts.style_inject_files` writes these; `ExpertRef.load` refuses them


@dataclass
class ExpertRef:
    """An expert file and, once read, the expert in memory. `method` and `skill` come from the file's header."""

    path: Path
    expert: LoraExpert | None = field(default=None, repr=False)
    method: str = LORA_METHOD
    skill: str = ""

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @classmethod
    def from_file(cls, path: str | Path) -> ExpertRef:
        """A reference to an expert file; reads only its header (a foreign LoRA file counts as method 'lora')."""
        path = Path(path)
        header = read_header(path)
        skill = header.get("selma.skill") or path.name.removesuffix(".safetensors")
        return cls(path, None, header.get("selma.method") or LORA_METHOD, skill)

    def load(self) -> LoraExpert:
        """The LoRA expert, read from `path` on the first call."""
        if self.expert is None:
            if self.method == STYLE_INJECT_METHOD:
                raise ValueError(
                    f"{self.path} holds a StyleInject expert, not a LoRA expert; load it with "
                    "selma.experts.load_style_inject_expert (in ComfyUI: SELMA Load StyleInject)"
                )
            if self.method != LORA_METHOD:
                raise ValueError(
                    f"{self.path} holds a {self.method!r} expert, not a LoRA expert; use it with the nodes for "
                    f"{self.method} experts"
                )
            from .lora_files import load_lora_expert  # torch and safetensors load only when needed

            self.expert = load_lora_expert(self.path)
        return self.expert


def read_header(path: str | Path) -> dict[str, str]:
    """The string metadata of a .safetensors file, without reading its tensors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no expert file at {path}")
    # The format: an 8-byte little-endian header length, then the header as JSON (metadata under __metadata__).
    with path.open("rb") as f:
        size = int.from_bytes(f.read(8), "little")
        try:
            if not 0 < size <= 100_000_000:
                raise ValueError(f"header size {size}")
            header = json.loads(f.read(size))
        except ValueError as e:
            raise ValueError(
                f"{path} is not a readable .safetensors file ({e}); expert files must be safetensors "
                "(re-download or re-save a truncated file)"
            ) from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    return dict(metadata) if isinstance(metadata, dict) else {}
