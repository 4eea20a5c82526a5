"""selma_full_pipeline: two skill experts, merged, then base vs experts vs merged on held-out prompts."""

from workflow_kit import (
    SMOKE_SETTINGS,
    Graph,
    compare,
    held_out_prompts,
    loaders,
    merge,
    note,
    render,
    skill_expert,
)

TITLE = "SELMA: full pipeline"
STAGES = ["skills", "prompts", "render", "datasets", "experts", "merge", "compare"]
NEEDS = ("SelmaApplyExpert",)
SKILLS = ("shapes_counting", "shapes_spatial")


def build(g: Graph) -> None:
    note(
        g,
        "SELMA full pipeline",
        "Two skills of the shapes world (counting, spatial relations): prompts written per skill -> rendered by "
        "this model (CLIP Text Encode -> KSampler -> VAE Decode, once per prompt) -> written as a dataset -> "
        "one LoRA expert per skill -> merged (SELMA's exact average) -> base, each expert and the merged expert "
        "rendered on held-out prompts, side by side.",
        SMOKE_SETTINGS,
        "\nThe held-out prompts are in the *Held-out prompts* node; keep them out of the training prompts.",
    )
    model, clip, vae, latent, negative = loaders(g)

    # one expert per skill
    trained = [skill_expert(g, skill, model, clip, vae, latent, negative, seed) for seed, skill in enumerate(SKILLS)]

    # merged expert
    merged = merge(g, [t.out("expert") for t in trained], "merged")
    merged_model = g.add("SelmaApplyExpert", title="Apply merged expert", model=model, expert=merged.out(0))

    # held-out prompts rendered by base, each expert and the merge, side by side
    prompts = held_out_prompts(g)
    positive = g.add("CLIPTextEncode", title="Encode held-out", text=prompts, clip=clip).out(0)
    columns = [("base", render(g, model, vae, positive, negative, latent, 42, "base"))]
    for skill, node in zip(SKILLS, trained, strict=True):
        columns.append((skill, render(g, node.out("model"), vae, positive, negative, latent, 42, skill)))
    columns.append(("merged", render(g, merged_model.out(0), vae, positive, negative, latent, 42, "merged")))
    compare(g, columns, prompts, "Compare: base vs experts vs merged")
