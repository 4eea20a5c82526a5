"""selma_styleinject_inspect: one StyleInject expert trained, then its router inspected on held-out prompts."""

from workflow_kit import SMOKE, SMOKE_SETTINGS, Graph, held_out_prompts, loaders, note, skill_expert

TITLE = "SELMA: StyleInject + router inspection"
STAGES = ["skill", "prompts", "render", "dataset", "StyleInject expert", "router heatmap", "router embedding"]
NEEDS = ("SelmaLoadStyleInject", "SelmaRouterInspector")


def build(g: Graph) -> None:
    note(
        g,
        "SELMA: StyleInject expert and its router",
        "One skill (shapes_colour_binding): prompts -> images rendered by this model -> dataset -> a StyleInject "
        "expert (several down-projections mixed by a router, AdaIN re-scaling; saved in models/loras/selma/) -> "
        "the router probabilities recorded per layer and denoising step while sampling held-out prompts: a layers x "
        "steps heatmap, a 2-D embedding across prompts (the paper's Fig. 9) and the numbers as JSON. The "
        "heatmap is also drawn on the inspector node (hover for layer, step and probabilities).",
        SMOKE_SETTINGS + ["routed styles 4: *Train expert* -> num_styles"],
        "\nTo inspect an expert trained earlier, load it with *SELMA Load StyleInject* instead of training.",
    )
    model, clip, vae, latent, negative = loaders(g)

    # the expert
    trained = skill_expert(g, "shapes_colour_binding", model, clip, vae, latent, negative, 0, method="styleinject")
    g.add("PreviewImage", title="Loss curve", images=trained.out("loss_curve"))

    # its router on held-out prompts
    prompts = held_out_prompts(g)
    inspector = g.add(
        "SelmaRouterInspector",
        title="Router inspector",
        model=trained.out("model"),
        clip=clip,
        prompts=prompts,
        seed=42,
        steps=SMOKE["sample_steps"],
        cfg=SMOKE["cfg"],
        sampler_name="euler",
        scheduler="normal",
        width=SMOKE["resolution"],
        height=SMOKE["resolution"],
        negative="",
        latent=latent,
    )
    g.add("PreviewImage", title="Router heatmap", images=inspector.out(0))
    g.add("PreviewImage", title="Router embedding", images=inspector.out(1))
    g.add("PreviewAny", title="Router numbers (JSON)", source=inspector.out(2))
