"""selma_train_expert: one skill -> prompts -> rendered dataset -> one LoRA expert, with its loss curve."""

from workflow_kit import SMOKE_SETTINGS, Graph, loaders, note, skill_expert

TITLE = "SELMA: train one expert"
STAGES = ["skill", "prompts", "render", "dataset", "LoRA expert", "loss curve"]
NEEDS = ()


def build(g: Graph) -> None:
    note(
        g,
        "SELMA: train one skill expert",
        "One skill (shapes_counting): prompts -> images rendered by this model -> dataset -> one LoRA expert, "
        "saved in models/loras/selma/ and applied to the MODEL output; the loss curve is previewed.",
        SMOKE_SETTINGS,
        "\nPick another skill in *Skill*, or 'custom' and fill in its description, examples and rules.",
    )
    model, clip, vae, latent, negative = loaders(g)
    trained = skill_expert(g, "shapes_counting", model, clip, vae, latent, negative, 0)
    g.add("PreviewImage", title="Loss curve", images=trained.out("loss_curve"))
