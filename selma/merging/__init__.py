"""Merging skill experts into one multi-skill expert (DESIGN §3.6): SELMA's exact average and better.

    from selma.merging import MergeConfig, merge_lora_experts
    result = merge_lora_experts([counting, spatial], MergeConfig(method="svd", rank=128))
    result.expert          # a LoraExpert, its recipe in .metadata["merge"]
    result.report_text()   # per module: rank, energy kept, relative error

`config` (methods and their defaults), `low_rank` (factor algebra), `sparsify` (TIES/DARE/magnitude),
`lora_merge` (the loop over modules), `report`, `self_checks`.
"""

from __future__ import annotations

from .config import EXACT_METHODS, METHODS, PRUNING_METHODS, MergeConfig
from .lora_merge import MergeResult, expert_fingerprint, merge_lora_experts, merge_recipe
from .report import ModuleReport, format_report, report_to_json
from .self_checks import CheckResult, check_linear_equals_sum, self_check_identity

__all__ = [
    "EXACT_METHODS",
    "METHODS",
    "PRUNING_METHODS",
    "CheckResult",
    "MergeConfig",
    "MergeResult",
    "ModuleReport",
    "check_linear_equals_sum",
    "expert_fingerprint",
    "format_report",
    "merge_lora_experts",
    "merge_recipe",
    "report_to_json",
    "self_check_identity",
]
