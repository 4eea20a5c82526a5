"""TIES, DARE and magnitude merging of dense updates ΔW_k, each step a named pure function.

- TIES (Yadav et al., 2023): trim each ΔW_k to its top-`density` magnitudes, elect each entry's sign by
  the summed (weighted) mass, then average only the entries that agree with it (disjoint mean).
- DARE (Yu et al., 2024): drop each entry with probability 1 − density and rescale survivors by
  1 / density, so every entry keeps its expectation; then the weighted sum.
- magnitude: keep each ΔW_k's top-`density` magnitudes; then the weighted sum.

As in PEFT's `merge_utils`, weights multiply the (trimmed) updates before sign election and the disjoint
mean, and "top density" keeps `int(density · numel)` entries.
"""

from __future__ import annotations

import hashlib

import torch


def top_magnitude_mask(delta: torch.Tensor, density: float) -> torch.Tensor:
    """A boolean mask of the `int(density · numel)` entries of `delta` largest in magnitude."""
    keep = int(density * delta.numel())
    mask = torch.zeros(delta.numel(), dtype=torch.bool, device=delta.device)
    if keep > 0:
        mask[torch.topk(delta.abs().flatten(), keep, sorted=False).indices] = True
    return mask.view(delta.shape)


def trim(delta: torch.Tensor, density: float) -> torch.Tensor:
    """`delta` with all but its top-`density` magnitudes set to zero."""
    return delta * top_magnitude_mask(delta, density)


def random_drop(delta: torch.Tensor, density: float, generator: torch.Generator) -> torch.Tensor:
    """DARE's drop-and-rescale: each entry survives with probability `density`, survivors ÷ density."""
    keep = torch.bernoulli(torch.full_like(delta, density), generator=generator)
    return delta * keep / density


def elect_sign(weighted: torch.Tensor) -> torch.Tensor:
    """TIES's elected sign per entry of a stack [K, ...]: the sign of the summed mass (+1 on a tie)."""
    return torch.where(weighted.sum(dim=0) >= 0, 1.0, -1.0).to(weighted.dtype)


def disjoint_mean(weighted: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    """The mean, per entry, of the non-zero values in a stack [K, ...] whose sign agrees with `sign`."""
    agrees = weighted.sign() == sign  # zeros (trimmed or absent) never agree
    count = agrees.sum(dim=0).clamp(min=1)
    return (weighted * agrees).sum(dim=0) / count


def ties(deltas: list[torch.Tensor], weights: list[float], density: float) -> torch.Tensor:
    """TIES-merging of dense updates: trim, elect sign, disjoint mean."""
    weighted = torch.stack([w * trim(d, density) for w, d in zip(weights, deltas, strict=True)])
    return disjoint_mean(weighted, elect_sign(weighted))


def dare(
    deltas: list[torch.Tensor], weights: list[float], density: float, generators: list[torch.Generator]
) -> torch.Tensor:
    """DARE (drop and rescale) of each update, then their weighted sum."""
    pairs = zip(weights, deltas, generators, strict=True)
    return torch.stack([w * random_drop(d, density, g) for w, d, g in pairs]).sum(dim=0)


def magnitude(deltas: list[torch.Tensor], weights: list[float], density: float) -> torch.Tensor:
    """Magnitude pruning of each update, then their weighted sum."""
    return torch.stack([w * trim(d, density) for w, d in zip(weights, deltas, strict=True)]).sum(dim=0)


def drop_generator(seed: int, module: str, expert_index: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The random stream DARE uses for one expert's update of one module.

    Derived from (seed, module name, expert position) alone, so a module's drops do not depend on which
    other modules are merged or in what order they are visited.
    """
    digest = hashlib.sha256(f"{seed}\0{module}\0{expert_index}".encode()).digest()
    return torch.Generator(device=device).manual_seed(int.from_bytes(digest[:8], "little") >> 1)
