"""Sub-graphs the workflows share: loaders, the native render, skill -> dataset -> expert, merge, compare."""

from __future__ import annotations

from .graph import Graph, Node, Out
from .smoke import HELD_OUT, SMOKE


def loaders(g: Graph):
    """The shipped model (MODEL, CLIP, VAE, one empty latent) and an empty negative prompt:
    (model, clip, vae, latent, negative)."""
    shipped = g.add("SelmaLoadShippedModel", title="Shipped model: shapes", model_name=SMOKE["model"], batch_size=1)
    negative = g.add("CLIPTextEncode", title="Negative prompt", text="", clip=shipped.out(1))
    return shipped.out(0), shipped.out(1), shipped.out(2), shipped.out(3), negative.out(0)


def render(g: Graph, model: Out, vae: Out, positive: Out, negative: Out, latent: Out, seed: int, label: str) -> Out:
    """The native render: KSampler -> VAE Decode; runs once per prompt when `positive` comes from a list."""
    sampler = g.add(
        "KSampler",
        title=f"KSampler ({label})",
        model=model,
        seed=seed,
        steps=SMOKE["sample_steps"],
        cfg=SMOKE["cfg"],
        sampler_name="euler",
        scheduler="normal",
        positive=positive,
        negative=negative,
        latent_image=latent,
        denoise=1.0,
    )
    return g.add("VAEDecode", title=f"VAE Decode ({label})", samples=sampler.out(0), vae=vae).out(0)


def skill_expert(
    g: Graph, skill: str, model: Out, clip: Out, vae: Out, latent: Out, negative: Out, seed: int, method: str = "lora"
):
    """skill -> prompts -> native render -> dataset writer -> expert. Returns the train node."""
    skill_node = g.add("SelmaSkill", title=f"Skill: {skill}", skill=skill)
    prompts = g.add(
        "SelmaGeneratePrompts",
        title=f"Prompts: {skill}",
        skill=skill_node.out(0),
        count=SMOKE["prompt_count"],
        threshold=0.8,
        seed=seed,
        run_name=SMOKE["run_name"],
        concurrency=8,
    )
    positive = g.add("CLIPTextEncode", title=f"Encode: {skill}", text=prompts.out("prompts"), clip=clip).out(0)
    images = render(g, model, vae, positive, negative, latent, seed, skill)
    dataset = g.add(
        "SelmaDatasetWriter",
        title=f"Dataset: {skill}",
        images=images,
        prompts=prompts.out("prompts"),
        skill=skill,
        run_name=SMOKE["run_name"],
        prompt_set=prompts.out("prompt_set"),
        image_format="png",
    )
    return train(g, skill, model, clip, vae, dataset.out(0), seed, method=method)


def train(
    g: Graph, skill: str, model: Out, clip: Out, vae: Out, dataset: Out, seed: int, method: str, **settings
) -> Node:
    """SELMA Train Expert with the shapes settings (SMOKE); `settings` override node inputs (a real model's)."""
    extra = {"num_styles": 4} if method == "styleinject" else {}
    values = {
        "method": method,
        "rank": SMOKE["rank"],
        "alpha": float(SMOKE["rank"]),
        "steps": SMOKE["train_steps"],
        "learning_rate": SMOKE["learning_rate"],
        "batch_size": SMOKE["batch_size"],
        "grad_accumulation": 1,
        "resolution": SMOKE["resolution"],
        "seed": seed,
        "save_every": 0,
        "gradient_checkpointing": False,
        "run_name": SMOKE["run_name"],
        "preview_every": 0,
        "preview_prompt": "",
        **extra,
        **settings,
    }
    return g.add(
        "SelmaTrainExpert", title=f"Train expert: {skill}", model=model, clip=clip, vae=vae, dataset=dataset, **values
    )


def merge(g: Graph, experts: list[Out], save_as: str, run_name: str = SMOKE["run_name"]) -> Node:
    """SELMA Merge Experts into models/loras/selma/<run>-<save_as>.safetensors (one name per workflow: the node
    refuses to replace another recipe's merge)."""
    sockets = {f"expert_{k}": out for k, out in enumerate(experts, start=1)}
    return g.add(
        "SelmaMergeExperts",
        title="Merge experts (SELMA linear)",
        method="linear",
        weights="",
        rank=0,
        density=0.5,
        seed=0,
        save_name=f"selma/{run_name}-{save_as}.safetensors",
        expert_files="",
        **sockets,
    )


def held_out_prompts(g: Graph) -> Out:
    """Prompts not used in training, one per line, split into a STRING list (threshold 1.0 keeps every line)."""
    text = g.add("PrimitiveStringMultiline", title="Held-out prompts (one per line)", value=HELD_OUT)
    return g.add("SelmaFilterPrompts", title="Held-out prompt list", prompts=text.out(0), threshold=1.0, pool="").out(
        0
    )


def base_vs_merged(g: Graph, files: list[str]) -> tuple[Out, list[tuple[str, Out]]]:
    """Load the expert `files`, merge them, render the held-out prompts with base and merged from the same seed:
    (the prompt list, [("base", images), ("merged", images)])."""
    model, clip, vae, latent, negative = loaders(g)

    # the experts, merged
    experts = [
        g.add("SelmaLoadExpert", title=f"Load expert {k}", model=model, expert_name=name, strength=1.0)
        for k, name in enumerate(files, start=1)
    ]
    merged = merge(g, [e.out("expert") for e in experts], "merge-compare")
    merged_model = g.add("SelmaApplyExpert", title="Apply merged expert", model=model, expert=merged.out(0))

    # held-out prompts rendered by base and merged
    prompts = held_out_prompts(g)
    positive = g.add("CLIPTextEncode", title="Encode held-out", text=prompts, clip=clip).out(0)
    columns = [
        ("base", render(g, model, vae, positive, negative, latent, 42, "base")),
        ("merged", render(g, merged_model.out(0), vae, positive, negative, latent, 42, "merged")),
    ]
    return prompts, columns


def compare(g: Graph, columns: list[tuple[str, Out]], prompts: Out, title: str) -> None:
    """Base / experts / merged side by side: SELMA Compare Grid if installed, else one Save Image per column."""
    if "SelmaCompareGrid" in g.specs:
        spec = g.specs["SelmaCompareGrid"]
        image_inputs = [i.name for i in spec.inputs if i.type == "IMAGE"]
        values = dict(zip(image_inputs, (out for _, out in columns), strict=False))
        names = {i.name for i in spec.inputs}
        if "prompts" in names:
            values["prompts"] = prompts
        label_input = next((n for n in ("labels", "column_labels") if n in names), None)
        if label_input:
            values[label_input] = ", ".join(label for label, _ in columns)
        if "run_name" in names:
            values["run_name"] = SMOKE["run_name"]
        g.add("SelmaCompareGrid", title=title, **values)
        return
    for label, out in columns:
        g.add("SaveImage", title=f"Save: {label}", images=out, filename_prefix=f"selma/compare_{label}")


# On the shapes model the world's exact checker answers; on a real model a chat VLM (any folder or hub id), e.g.
ANSWERER_MODEL = "llava-hf/llava-interleave-qwen-0.5b-hf"
CLIP_MODEL = "openai/clip-vit-base-patch32"


def evaluate(g: Graph, columns: list[tuple[str, Out]], prompts: Out, skill: str, title: str) -> Node:
    """SELMA Evaluator -> SELMA Evaluate: the variants' images scored (VQAScore, CLIPScore) into a scoreboard."""
    evaluator = g.add(
        "SelmaEvaluator",
        title="Evaluator (answerer + CLIP)",
        answerer="programmatic",
        answerer_model=SMOKE["model"],
        clip_model="",
        metrics="dsg,vqascore",
        base_url="",
        api_key_env="OPENAI_API_KEY",
        batch_size=8,
    )
    images = {f"images_{k}": out for k, (_, out) in enumerate(columns, start=1)}
    return g.add(
        "SelmaEvaluate",
        title=title,
        evaluator=evaluator.out(0),
        prompts=prompts,
        labels=", ".join(label for label, _ in columns),
        skill=skill,
        run_name=SMOKE["run_name"],
        seed=42,
        **images,
    )
