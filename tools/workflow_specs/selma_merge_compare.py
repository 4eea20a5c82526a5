"""selma_merge_compare: two published experts loaded, merged, then base vs merged on held-out prompts."""

from workflow_kit import SMOKE, Graph, compare, held_out_prompts, loaders, merge, note, render

TITLE = "SELMA: merge and compare"
STAGES = ["load experts", "merge", "render held-out", "compare"]
NEEDS = ("SelmaApplyExpert",)
FILES = [f"selma/{SMOKE['run_name']}-{skill}.safetensors" for skill in ("counting", "spatial")]


def build(g: Graph) -> None:
    note(
        g,
        "SELMA: merge experts and compare",
        "Loads two experts from models/loras, merges them (SELMA's exact average) and renders base vs "
        "merged on held-out prompts, side by side.",
        [
            f"the experts: *SELMA Load Expert* -> expert_name ({FILES[0]}, {FILES[1]}: the files that "
            "selma_full_pipeline / selma_train_expert publish; any LoRA in models/loras works)",
            f"sampling steps {SMOKE['sample_steps']}: every *KSampler* -> steps",
            f"resolution {SMOKE['resolution']}x{SMOKE['resolution']}: *Empty Latent Image* -> width/height",
            "merge method, weights and rank: *SELMA Merge Experts*",
        ],
    )
    model, clip, vae, latent, negative = loaders(g)

    # the experts, merged
    experts = [
        g.add("SelmaLoadExpert", title=f"Load expert {k}", model=model, expert_name=name, strength=1.0)
        for k, name in enumerate(FILES, start=1)
    ]
    merged = merge(g, [e.out("expert") for e in experts])
    merged_model = g.add("SelmaApplyExpert", title="Apply merged expert", model=model, expert=merged.out(0))

    # held-out prompts rendered by base and merge, side by side
    prompts = held_out_prompts(g)
    positive = g.add("CLIPTextEncode", title="Encode held-out", text=prompts, clip=clip).out(0)
    columns = [
        ("base", render(g, model, vae, positive, negative, latent, 42, "base")),
        ("merged", render(g, merged_model.out(0), vae, positive, negative, latent, 42, "merged")),
    ]
    compare(g, columns, prompts, "Compare: base vs merged")
