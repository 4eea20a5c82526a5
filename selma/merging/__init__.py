"""Merging skill experts into one multi-skill expert (DESIGN §3.6): SELMA's exact average and better.

    from selma.merging import MergeConfig, merge_lora_experts
    result = merge_lora_experts([counting, spatial], MergeConfig(method="svd", rank=128))
    result.expert          # a LoraExpert, its recipe in .metadata["merge"]
    result.report_text()   # per module: rank, energy kept, relative error

`config` (methods and their defaults), `low_rank` (factor algebra), `sparsify` (TIES/DARE/magnitude),
`lora_merge` (the loop over modules), `report`, `self_checks` (on ΔW), `adapter_check` (on a diffusers UNet),
`merge_files` (files in, merged file and report out: what the CLI and the node run).
"""

from __future__ import annotations

from .adapter_check import check_linear_against_adapters
from .config import EXACT_METHODS, METHODS, PRUNING_METHODS, MergeConfig, parse_weights
from .lora_merge import MergeResult, expert_fingerprint, merge_lora_experts, merge_recipe
from .merge_files import MergedExpertFile, default_report_path, merge_expert_files
from .report import ModuleReport, format_report, report_to_json
from .self_checks import CheckResult, check_linear_equals_sum, run_self_checks, self_check_identity

__all__ = [
    "EXACT_METHODS",
    "METHODS",
    "PRUNING_METHODS",
    "CheckResult",
    "MergeConfig",
    "MergeResult",
    "MergedExpertFile",
    "ModuleReport",
    "check_linear_against_adapters",
    "check_linear_equals_sum",
    "default_report_path",
    "expert_fingerprint",
    "format_report",
    "merge_expert_files",
    "merge_lora_experts",
    "merge_recipe",
    "parse_weights",
    "report_to_json",
    "run_self_checks",
    "self_check_identity",
]
