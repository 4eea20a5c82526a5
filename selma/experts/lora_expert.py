"""A LoRA expert in memory: per adapted module, the factors A (down) and B (up) and alpha.

Module names are diffusers UNet names (`down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q`);
files, PEFT adapters and ComfyUI patches are translated to and from this one form (see expert_files).
The update a module adds to its weight is `ΔW = (alpha / r) · B @ A`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class LoraModule:
    down: torch.Tensor  # A: [r, in] (Linear) or [r, in, kh, kw] (Conv2d)
    up: torch.Tensor  # B: [out, r] (Linear) or [out, r, 1, 1] (Conv2d)
    alpha: float

    def __post_init__(self) -> None:
        if self.down.shape[0] != self.up.shape[1]:
            raise ValueError(
                f"LoRA factors disagree on the rank: down {tuple(self.down.shape)}, up {tuple(self.up.shape)}"
            )

    @property
    def rank(self) -> int:
        return self.down.shape[0]

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @property
    def in_features(self) -> int:
        return self.down.shape[1]

    @property
    def out_features(self) -> int:
        return self.up.shape[0]

    def delta(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """ΔW as a dense matrix [out, in·kh·kw] (for checks and small modules; merging avoids it)."""
        down = self.down.reshape(self.rank, -1).to(dtype)
        up = self.up.reshape(self.out_features, self.rank).to(dtype)
        return self.scale * (up @ down)


@dataclass
class LoraExpert:
    """One skill expert (or a merge of several): its modules and self-describing metadata."""

    modules: dict[str, LoraModule]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def ranks(self) -> dict[str, int]:
        return {name: module.rank for name, module in self.modules.items()}
