"""selma_merge_compare: two published experts loaded, merged, then base vs merged on held-out prompts."""

from workflow_kit import SMOKE, Graph, base_vs_merged, compare, note

TITLE = "SELMA: merge and compare"
STAGES = ["load experts", "merge", "render held-out", "compare"]
NEEDS = ("SelmaApplyExpert",)
FILES = [f"selma/{SMOKE['run_name']}-{skill}.safetensors" for skill in ("shapes_counting", "shapes_spatial")]


def build(g: Graph) -> None:
    note(
        g,
        "SELMA: merge experts and compare",
        "Loads two experts from models/loras, merges them (SELMA's exact average) and renders base vs "
        "merged on held-out prompts, side by side.",
        [
            f"the experts: *SELMA Load Expert* -> expert_name ({FILES[0]}, {FILES[1]}: the files that "
            "selma_full_pipeline / selma_train_expert publish; any LoRA in models/loras works)",
            f"sampling {SMOKE['sample_steps']} steps, CFG {SMOKE['cfg']}: every *KSampler* -> steps / cfg",
            f"resolution {SMOKE['resolution']}x{SMOKE['resolution']}: the shipped model's size",
            "merge method, weights and rank: *SELMA Merge Experts*",
        ],
    )
    prompts, columns = base_vs_merged(g, FILES)
    compare(g, columns, prompts, "Compare: base vs merged")
