"""Merging LoRA skill experts into one multi-skill expert: one loop over the union of their modules.

Each module is merged on its own by a pure function of its inputs' factors (see `config` for the
methods). A module missing from an expert contributes zero for that expert. Inputs are checked before any
work: experts whose factors disagree on a module (different base models) or a rank the modules cannot
hold fail at once, naming the module and its shapes. The result's factors carry the scale: alpha equals
the rank, so `alpha / r = 1`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .. import __version__
from ..experts.lora_expert import LoraExpert, LoraModule
from . import sparsify
from .config import PRUNING_METHODS, MergeConfig
from .low_rank import LowRankUpdate, stack_factors, truncate_dense, truncate_from_factors
from .report import ModuleReport, format_report, report_to_json

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]

# The metadata keys `load_lora_expert` fills from a selma file's header (`selma.skill`, `selma.base_model`; the
# latter is `fingerprint_unet`'s architecture fingerprint). Foreign files carry neither.
SKILL_KEY = "skill"
# Metadata an expert may carry about its base model: copied to the merge when every input agrees.
BASE_MODEL_KEYS = ("base_model", "family")


@dataclass
class MergeResult:
    """The merged expert (its recipe in `expert.metadata["merge"]`) and the per-module report."""

    expert: LoraExpert
    report: list[ModuleReport]

    @property
    def recipe(self) -> dict[str, Any]:
        return self.expert.metadata["merge"]

    def report_text(self) -> str:
        return format_report(self.report, self.recipe)

    def report_json(self) -> dict[str, Any]:
        return report_to_json(self.report, self.recipe)


@dataclass
class _ModuleInputs:
    """One module as the experts adapt it: (expert index, factors) for each expert that has it."""

    name: str
    parts: list[tuple[int, LoraModule]]

    @property
    def shape(self) -> tuple[int, int]:
        down = self.parts[0][1].down
        return self.parts[0][1].out_features, down[0].numel()

    @property
    def max_rank(self) -> int:
        """The largest rank this module's ΔW can have: min(out, in·kh·kw)."""
        return min(self.shape)


def merge_lora_experts(
    experts: list[LoraExpert], config: MergeConfig, on_progress: ProgressFn | None = None
) -> MergeResult:
    """Merge LoRA experts per `config`; `on_progress(done, total)` is called after each module."""
    _check_experts(experts)
    weights = config.resolve_weights(len(experts))
    modules = _collect_modules(experts)
    ranks = {m.name: _target_rank(m, config, modules) for m in modules}
    out_dtype = _result_dtype(experts)
    work_dtype = torch.float64 if out_dtype == torch.float64 else torch.float32
    device = modules[0].parts[0][1].down.device

    merged: dict[str, LoraModule] = {}
    report: list[ModuleReport] = []
    for done, inputs in enumerate(modules, 1):
        update = _merge_module(inputs, weights, config, ranks[inputs.name], work_dtype, device)
        merged[inputs.name] = _as_module(update, inputs.parts[0][1], out_dtype)
        report.append(
            ModuleReport(
                module=inputs.name,
                shape=inputs.shape,
                experts=len(inputs.parts),
                rank=update.rank,
                energy_kept=update.energy_kept,
                relative_error=update.relative_error,
            )
        )
        if on_progress is not None:
            on_progress(done, len(modules))

    short = [r.module for r in report if config.rank is not None and r.rank < config.rank]
    if short:
        log.info(
            "%d module(s) hold fewer than rank %d after the merge (e.g. %s): they are kept exactly, at the rank "
            "their inputs give",
            len(short),
            config.rank,
            short[0],
        )
    recipe = merge_recipe(experts, config, weights)
    result_expert = LoraExpert(merged, _merged_metadata(experts, recipe))
    log.info("merged %d expert(s) with %s into %d module(s)", len(experts), config.method, len(merged))
    return MergeResult(result_expert, report)


def _merge_module(
    inputs: _ModuleInputs,
    weights: list[float],
    config: MergeConfig,
    rank: int | None,
    dtype: torch.dtype,
    device: torch.device,
) -> LowRankUpdate:
    """One module: exact stacking, the factor path (svd / linear with a rank) or the dense pruning path."""
    factors = [_flat_factors(module, dtype, device) for _, module in inputs.parts]
    if config.method not in PRUNING_METHODS:
        coefficients = [weights[k] * module.scale for k, module in inputs.parts]
        up, down = stack_factors([u for u, _ in factors], [d for _, d in factors], coefficients)
        return LowRankUpdate(up, down, 1.0, 0.0) if rank is None else truncate_from_factors(up, down, rank)
    # TIES/DARE/magnitude act entry by entry on each ΔW_k, so these need the dense matrices.
    deltas = [module.scale * (u @ d) for (u, d), (_, module) in zip(factors, inputs.parts, strict=True)]
    part_weights = [weights[k] for k, _ in inputs.parts]
    if config.method == "ties":
        dense = sparsify.ties(deltas, part_weights, config.density)
    elif config.method == "dare":
        generators = [sparsify.drop_generator(config.seed, inputs.name, k, device) for k, _ in inputs.parts]
        dense = sparsify.dare(deltas, part_weights, config.density, generators)
    else:
        dense = sparsify.magnitude(deltas, part_weights, config.density)
    return truncate_dense(dense, rank)


def _check_experts(experts: list[LoraExpert]) -> None:
    if not isinstance(experts, (list, tuple)) or not experts:
        raise ValueError("no experts to merge: give a list of at least one LoraExpert")
    for i, expert in enumerate(experts):
        if not isinstance(expert, LoraExpert):
            raise TypeError(f"experts[{i}] is a {type(expert).__name__}, not a LoraExpert; load expert files first")
        if not expert.modules:
            raise ValueError(f"experts[{i}] ({_describe(expert, i)}) adapts no modules; it cannot be merged")
    families = {_describe(expert, i): model_family(expert) for i, expert in enumerate(experts)}
    if len(set(families.values())) > 1:
        listed = ", ".join(f"{name}: {family}" for name, family in families.items())
        raise ValueError(
            f"the experts were trained on different model families ({listed}); an expert only merges with "
            "experts of its own base model"
        )


def model_family(expert: LoraExpert) -> str:
    """'flux' / 'sd3' (the header's family, or DiT module names: 'DiT'), else 'UNet (SD1.x/2.x/SDXL)'."""
    from ..experts.dit_lora_files import is_dit_name

    if expert.metadata.get("family"):
        return expert.metadata["family"]
    return "DiT" if all(is_dit_name(name) for name in expert.modules) else "UNet (SD1.x/2.x/SDXL)"


def _collect_modules(experts: list[LoraExpert]) -> list[_ModuleInputs]:
    """The union of the experts' modules, in first-seen order, checking that their shapes agree."""
    found: dict[str, _ModuleInputs] = {}
    for k, expert in enumerate(experts):
        for name, module in expert.modules.items():
            if name not in found:
                found[name] = _ModuleInputs(name, [(k, module)])
                continue
            first_k, first = found[name].parts[0]
            if _signature(first) != _signature(module):
                raise ValueError(
                    f"experts disagree on module {name!r}: {_describe(experts[first_k], first_k)} has "
                    f"{_shapes(first)} but {_describe(expert, k)} has {_shapes(module)}; experts trained on "
                    "different base models cannot be merged"
                )
            found[name].parts.append((k, module))
    return list(found.values())


def _target_rank(inputs: _ModuleInputs, config: MergeConfig, modules: list[_ModuleInputs]) -> int | None:
    """The rank a compressing merge truncates this module to (None for an exact merge)."""
    if not config.compresses:
        return None
    if config.rank is None:
        return min(max(m.rank for _, m in inputs.parts), inputs.max_rank)
    if config.rank > inputs.max_rank:
        tightest = min(modules, key=lambda m: m.max_rank)
        raise ValueError(
            f"MergeConfig.rank={config.rank} is larger than possible for module {inputs.name!r}: its ΔW is "
            f"{inputs.shape[0]}x{inputs.shape[1]}, so its rank is at most {inputs.max_rank}; use rank <= "
            f"{tightest.max_rank} (module {tightest.name!r} allows no more), or leave rank unset (exact for "
            "linear, each module's largest input rank otherwise)"
        )
    return config.rank


def _flat_factors(module: LoraModule, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(up [out, r], down [r, in·kh·kw]) in the working dtype; conv factors flattened like Linear ones."""
    up = module.up.to(device=device, dtype=dtype).reshape(module.out_features, module.rank)
    down = module.down.to(device=device, dtype=dtype).reshape(module.rank, -1)
    return up, down


def _as_module(update: LowRankUpdate, like: LoraModule, dtype: torch.dtype) -> LoraModule:
    """Factors back in the inputs' layout (conv kernels restored) with scale 1 (alpha = rank)."""
    rank = update.rank
    down = update.down.reshape(rank, *like.down.shape[1:]).to(dtype).contiguous()
    up = update.up.reshape(like.up.shape[0], rank, *like.up.shape[2:]).to(dtype).contiguous()
    return LoraModule(down=down, up=up, alpha=float(rank))


def _result_dtype(experts: list[LoraExpert]) -> torch.dtype:
    dtype = None
    for expert in experts:
        for module in expert.modules.values():
            for tensor in (module.down, module.up):
                dtype = tensor.dtype if dtype is None else torch.promote_types(dtype, tensor.dtype)
    return dtype


def _signature(module: LoraModule) -> tuple:
    # Everything but the rank must agree: ΔW's out and in sizes, the kernel, Linear vs Conv2d layout.
    return tuple(module.down.shape[1:]), tuple(module.up.shape[:1]), tuple(module.up.shape[2:])


def _shapes(module: LoraModule) -> str:
    delta = f"{module.out_features}x{module.down[0].numel()}"
    return f"down {list(module.down.shape)} / up {list(module.up.shape)} (ΔW {delta})"


def _describe(expert: LoraExpert, index: int) -> str:
    skill = expert.metadata.get(SKILL_KEY)
    return f"expert {index} (skill {skill!r})" if skill else f"expert {index}"


def expert_fingerprint(expert: LoraExpert) -> str:
    """A short content hash of an expert's factors and alphas (16 hex digits), to name merge inputs."""
    digest = hashlib.sha256()
    for name in sorted(expert.modules):
        module = expert.modules[name]
        digest.update(f"{name}\0{module.alpha!r}\0".encode())
        for tensor in (module.down, module.up):
            tensor = tensor.detach().to("cpu").contiguous()
            digest.update(f"{tensor.dtype}{list(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:16]


def merge_recipe(experts: list[LoraExpert], config: MergeConfig, weights: list[float]) -> dict[str, Any]:
    """The JSON-ready recipe stored in the merged expert's metadata: method, weights, rank, inputs."""
    recipe: dict[str, Any] = {"method": config.method, "weights": weights, "rank": config.rank}
    if config.method in PRUNING_METHODS:
        recipe["density"] = config.density
    if config.method == "dare":
        recipe["seed"] = config.seed
    recipe["exact"] = not config.compresses
    inputs = []
    for expert in experts:
        entry = {key: expert.metadata[key] for key in (SKILL_KEY, *BASE_MODEL_KEYS) if key in expert.metadata}
        entry["fingerprint"] = expert_fingerprint(expert)
        entry["modules"] = len(expert.modules)
        entry["rank"] = max(expert.ranks.values())
        inputs.append(entry)
    recipe["inputs"] = inputs
    recipe["selma_version"] = __version__
    return recipe


def _merged_metadata(experts: list[LoraExpert], recipe: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"merge": recipe}
    skills = [e.metadata.get(SKILL_KEY) for e in experts]
    if all(isinstance(s, str) and s for s in skills):
        metadata[SKILL_KEY] = "+".join(skills)
    for key in BASE_MODEL_KEYS:
        values = [e.metadata[key] for e in experts if key in e.metadata]
        if not values:
            continue
        if all(v == values[0] for v in values):
            if len(values) == len(experts):
                metadata[key] = values[0]
        else:
            # Shapes agreed (checked), so this is e.g. two fine-tunes of one architecture: allowed, but said.
            log.warning(
                "the experts disagree on %s (%s); the merge records each input's value in its recipe",
                key,
                ", ".join(repr(v) for v in values),
            )
    return metadata
