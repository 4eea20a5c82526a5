"""What the StyleInject merges ask of their input experts: a name for errors, a value they all share, a dtype.

Shared by stacking (`style_inject_stacking`) and averaging (`style_inject_averaging`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..experts.style_inject_files import StyleInjectExpert


def describe(expert: StyleInjectExpert, index: int) -> str:
    skill = expert.metadata.get("skill")
    return f"expert {index} (skill {skill!r})" if skill else f"expert {index}"


def shared_value(
    experts: Sequence[StyleInjectExpert], what: str, value: Callable[[StyleInjectExpert], Any], hint: str
):
    """`value(e)`, the same for every expert; else a ValueError naming the first that differs, with `hint`."""
    values = [value(e) for e in experts]
    for index, v in enumerate(values):
        if v != values[0]:
            raise ValueError(
                f"{describe(experts[index], index)} has {what} {v!r}, {describe(experts[0], 0)} has "
                f"{values[0]!r}; {hint}"
            )
    return values[0]


def merged_dtype(experts: Sequence[StyleInjectExpert]) -> torch.dtype:
    dtype = torch.float16
    for expert in experts:
        for tensor in expert.tensors.values():
            dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype
