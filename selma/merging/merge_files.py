"""Merging expert files end to end, as `selma merge` and the SelmaMergeExperts node do it: check the inputs, read
them, merge, write the merged expert (its recipe in the header) and the report JSON next to it, self-check.

Everything that can be checked before the work is (missing files, the weights count, the output name), so a
mistake fails in a second, not after minutes of merging.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..atomic_files import write_text_atomic
from ..experts.finite import check_finite
from ..experts.header import decode_metadata
from ..experts.ref import LORA_METHOD, ExpertRef, read_header
from ..stage_lock import stage_lock
from .config import PRUNING_METHODS, MergeConfig
from .lora_merge import MergeResult, merge_lora_experts
from .report import summarize
from .self_checks import CheckResult, run_self_checks

log = logging.getLogger(__name__)

REPORT_SUFFIX = ".report.json"
_EXPERT_SUFFIX = ".safetensors"


@dataclass
class MergedExpertFile:
    """The merged expert file, its report file, the merge itself and the self-checks run (if any)."""

    path: Path
    report_path: Path
    result: MergeResult
    checks: list[CheckResult]

    @property
    def passed(self) -> bool:
        """Whether every self-check run passed (True when none ran)."""
        return all(check.passed for check in self.checks)

    def as_ref(self) -> ExpertRef:
        """The merged expert as the SELMA_EXPERT nodes pass on (already in memory)."""
        skill = self.result.expert.metadata.get("skill") or self.path.name.removesuffix(_EXPERT_SUFFIX)
        return ExpertRef(self.path, self.result.expert, LORA_METHOD, skill)

    def summary(self) -> str:
        """A few lines: the recipe, the report's summary, where the files went, each check's verdict."""
        s = summarize(self.result.report)
        lines = [self.result.report_text().splitlines()[0]]
        lines.append(
            f"{s['modules']} module(s), rank {s['rank_min']}..{s['rank_max']}; energy kept min "
            f"{s['energy_kept_min']:.6f} ({s['energy_kept_min_module']}), mean {s['energy_kept_mean']:.6f}; "
            f"relative error max {s['relative_error_max']:.3e}"
        )
        lines.append(f"wrote {self.path}")
        lines.append(f"report {self.report_path}")
        lines += [f"check {check}" for check in self.checks]
        return "\n".join(lines)


def default_report_path(output: str | Path) -> Path:
    """`OUT.report.json` next to `OUT.safetensors`."""
    output = Path(output)
    return output.with_name(output.name.removesuffix(_EXPERT_SUFFIX) + REPORT_SUFFIX)


def merge_expert_files(
    experts: Sequence[ExpertRef | str | Path],
    config: MergeConfig,
    output: str | Path,
    *,
    report_path: str | Path | None = None,
    check: bool = False,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> MergedExpertFile:
    """Merge expert files (or references with the expert already in memory) into `output`, atomically.

    The report (per module: rank, energy kept, relative error; the recipe; the checks) goes to `report_path`
    (default `OUT.report.json`). `check` runs `run_self_checks`; a failed check is in the result, not raised.
    An existing `output` is replaced only by the same recipe (a rerun), or when `overwrite` says so.
    """
    output = Path(output)
    report_path = default_report_path(output) if report_path is None else Path(report_path)
    refs = _references(experts)
    config.resolve_weights(len(refs))  # a wrong weights count fails before any file is read
    if output.suffix != _EXPERT_SUFFIX:
        raise ValueError(
            f"the merged expert must be written to a .safetensors file (ComfyUI lists only those in models/loras), "
            f"got {output}"
        )
    if output.is_dir():
        raise ValueError(f"the output {output} is a folder; give a file name ending in .safetensors")
    with stage_lock(output.parent, f"merge-{output.stem}", f"merging into {output}"):
        if not overwrite:
            _refuse_another_recipes_output(output, config, refs)
        return _merge(refs, config, output, report_path, check, on_progress)


def _recipe_identity(method, weights, rank, density, seed, files) -> dict[str, Any]:
    """What makes two merges the same merge: its settings and its inputs' file names (retraining an input with
    the same name is a rerun of the same recipe; fingerprints would call it another)."""
    identity = {"method": method, "weights": [float(w) for w in weights], "rank": rank, "files": list(files)}
    if method in PRUNING_METHODS:
        identity["density"] = density
    if method == "dare":
        identity["seed"] = seed
    return identity


def _refuse_another_recipes_output(output: Path, config: MergeConfig, refs: list[ExpertRef]) -> None:
    if not output.exists():
        return
    weights = config.resolve_weights(len(refs))
    new = _recipe_identity(
        config.method, weights, config.rank, config.density, config.seed, [r.path.name for r in refs]
    )
    try:
        old = decode_metadata(read_header(output)).get("merge")
    except (OSError, ValueError):
        old = None
    if isinstance(old, dict):
        files = [entry.get("file") for entry in old.get("inputs", [])]
        previous = _recipe_identity(
            old.get("method"), old.get("weights", []), old.get("rank"), old.get("density"), old.get("seed"), files
        )
        if previous == new:
            return
        what = f"another merge ({_describe(previous)}); this one is {_describe(new)}"
    else:
        what = "a file that is not a SELMA merge"
    raise ValueError(
        f"{output} already holds {what}. Give this merge another output name, or overwrite it explicitly "
        "(selma merge --overwrite; the node's overwrite switch)"
    )


def _describe(identity: dict[str, Any]) -> str:
    weights = ",".join(f"{w:g}" for w in identity["weights"])
    return f"{identity['method']} of {' + '.join(map(str, identity['files']))}, weights {weights}"


def _merge(refs, config: MergeConfig, output: Path, report_path: Path, check: bool, on_progress) -> MergedExpertFile:
    in_memory = [ref.expert is not None for ref in refs]  # from a node socket; files are checked as they load
    loaded = [ref.load() for ref in refs]
    for ref, expert, held in zip(refs, loaded, in_memory, strict=True):
        if held:
            check_finite(_factors(expert), ref.path)
    result = merge_lora_experts(loaded, config, on_progress=on_progress)
    check_finite(_factors(result.expert), f"the merge into {output}")  # never write what did not compute
    for entry, ref in zip(result.recipe["inputs"], refs, strict=True):
        entry["file"] = ref.path.name  # the name only: full paths would leak the user's folders into shared files
    checks = run_self_checks(loaded, config, result.expert) if check else []

    from ..experts.lora_files import save_lora_expert

    output.parent.mkdir(parents=True, exist_ok=True)
    save_lora_expert(output, result.expert)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(report_path, json.dumps(_report(result, output, checks), indent=1) + "\n")
    log.info("merged %d expert(s) into %s (report %s)", len(refs), output, report_path)
    return MergedExpertFile(output, report_path, result, checks)


def _factors(expert) -> dict:
    return {
        f"{name}.{part}": getattr(module, part) for name, module in expert.modules.items() for part in ("up", "down")
    }


def _references(experts: Sequence[ExpertRef | str | Path]) -> list[ExpertRef]:
    if isinstance(experts, (str, Path)) or not experts:
        raise ValueError("no experts to merge: give at least one expert file (two or more to combine skills)")
    paths = [Path(e) for e in experts if not isinstance(e, ExpertRef)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} expert file(s) not found: {', '.join(missing)}")
    refs = [e if isinstance(e, ExpertRef) else ExpertRef.from_file(e) for e in experts]
    other = [ref for ref in refs if ref.method != LORA_METHOD]
    if other:
        raise ValueError(
            f"{other[0].path} is a {other[0].method!r} expert; only LoRA experts can be merged here "
            "(merging StyleInject experts is not available yet)"
        )
    return refs


def _report(result: MergeResult, output: Path, checks: list[CheckResult]) -> dict[str, Any]:
    return {
        "output": output.name,
        **result.report_json(),
        "inputs": result.recipe["inputs"],
        "checks": [{**asdict(check), "problems": list(check.problems)} for check in checks],
    }
