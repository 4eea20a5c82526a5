"""selma_flux_train_merge: two FLUX.1-dev skill experts (prompts -> render -> dataset -> LoRA), merged, compared."""

from workflow_kit import Graph, compare, held_out_prompts, merge, train
from workflow_kit.graph import NOTE_TYPE

TITLE = "SELMA: FLUX.1 experts, merged"
STAGES = ["FLUX.1 loaders", "skills", "prompts", "render", "datasets", "experts", "merge", "compare"]
NEEDS = ("SelmaApplyExpert",)
SKILLS = ("counting", "spatial")
RUN = "selma_flux"
NEEDS_WEIGHTS = True  # FLUX.1 files of your own: checked against the schema, not run by the tests
# What fits one 24 GB GPU (RTX 3090/4090): the transformer in fp8, T5 in fp8, LoRA rank 16 at 512 px with
# gradient checkpointing and cached text/latents, batch 1 x 4 accumulated.
TRAIN = {
    "rank": 16,
    "alpha": 16.0,
    "steps": 1000,
    "learning_rate": 1e-4,
    "batch_size": 1,
    "grad_accumulation": 4,
    "resolution": 512,
    "gradient_checkpointing": True,
    "run_name": RUN,
}
RENDER = {"steps": 28, "guidance": 3.5, "size": 1024}
NOTE = f"""# SELMA with FLUX.1-dev: two skill experts, merged

Two general skills (counting, spatial relations): prompts written per skill -> rendered by FLUX.1-dev itself
(CLIP Text Encode -> FluxGuidance -> KSampler -> VAE Decode, once per prompt) -> written as a dataset -> one LoRA
expert per skill -> merged (SELMA's exact average) -> base, each expert and the merge on held-out prompts.

## Model files (put them where ComfyUI looks)
- models/diffusion_models/`flux1-dev.safetensors` — *Load Diffusion Model*, weight_dtype `fp8_e4m3fn`
- models/text_encoders/`clip_l.safetensors` and `t5xxl_fp8_e4m3fn.safetensors` — *DualCLIPLoader*, type `flux`
- models/vae/`ae.safetensors` — *Load VAE*

## Settings for one 24 GB GPU (and where to change them)
- rendering {RENDER["size"]}x{RENDER["size"]}, {RENDER["steps"]} steps, FluxGuidance {RENDER["guidance"]}, CFG 1.0
  (FLUX.1-dev is guidance-distilled: no negative pass): *KSampler* / *FluxGuidance* / *Empty Latent*
- prompt count 200 per skill (SELMA: ~1000+): *SELMA Generate Prompts* -> count
- training LoRA rank {TRAIN["rank"]}, {TRAIN["steps"]} steps, learning rate {TRAIN["learning_rate"]}, batch
  {TRAIN["batch_size"]} x {TRAIN["grad_accumulation"]}, {TRAIN["resolution"]} px, gradient checkpointing on:
  *SELMA Train Expert*. The trainer caches every caption's T5/CLIP embedding and every latent first; the
  transformer is trained with the flow-matching objective and guidance {RENDER["guidance"]}, as diffusers' FLUX
  LoRA script trains it. In ComfyUI the adapter sits on FLUX's fused qkv / linear1 layers and the expert is
  written split into diffusers' names, so stock *LoraLoader* and diffusers both load it.
- run folder output/selma/{RUN}/; experts in models/loras/selma/{RUN}-<skill>.safetensors
- these settings are not measured on a GPU by SELMA's tests (they run tiny random FLUX models on a CPU)
"""


def build(g: Graph) -> None:
    g.add(NOTE_TYPE, text=NOTE)
    model = g.add("UNETLoader", title="Load FLUX.1-dev", unet_name="flux1-dev.safetensors", weight_dtype="fp8_e4m3fn")
    clip = g.add(
        "DualCLIPLoader",
        title="CLIP-L + T5-XXL",
        clip_name1="clip_l.safetensors",
        clip_name2="t5xxl_fp8_e4m3fn.safetensors",
        type="flux",
        device="default",
    )
    vae = g.add("VAELoader", title="FLUX VAE", vae_name="ae.safetensors")
    size = RENDER["size"]
    latent = g.add("EmptySD3LatentImage", title="Empty latent", width=size, height=size, batch_size=1).out(0)
    negative = g.add("CLIPTextEncode", title="Negative (unused at CFG 1)", text="", clip=clip.out(0)).out(0)

    def render(positive, model_out, seed: int, label: str):
        guided = g.add("FluxGuidance", title=f"Guidance ({label})", conditioning=positive, guidance=RENDER["guidance"])
        sampler = g.add(
            "KSampler", title=f"KSampler ({label})", model=model_out, seed=seed, steps=RENDER["steps"], cfg=1.0,
            sampler_name="euler", scheduler="simple", positive=guided.out(0), negative=negative, latent_image=latent,
            denoise=1.0,
        )  # fmt: skip
        return g.add("VAEDecode", title=f"VAE Decode ({label})", samples=sampler.out(0), vae=vae.out(0)).out(0)

    trained = []
    for seed, skill in enumerate(SKILLS):
        skill_node = g.add("SelmaSkill", title=f"Skill: {skill}", skill=skill)
        prompts = g.add(
            "SelmaGeneratePrompts", title=f"Prompts: {skill}", skill=skill_node.out(0), count=200, threshold=0.8,
            seed=seed, run_name=RUN, concurrency=8,
        )  # fmt: skip
        positive = g.add("CLIPTextEncode", title=f"Encode: {skill}", text=prompts.out("prompts"), clip=clip.out(0))
        images = render(positive.out(0), model.out(0), seed, skill)
        dataset = g.add(
            "SelmaDatasetWriter", title=f"Dataset: {skill}", images=images, prompts=prompts.out("prompts"),
            skill=skill, run_name=RUN, prompt_set=prompts.out("prompt_set"), image_format="png",
        )  # fmt: skip
        trained.append(train(g, skill, model.out(0), clip.out(0), vae.out(0), dataset.out(0), seed, "lora", **TRAIN))

    merged = merge(g, [t.out("expert") for t in trained], "merged", run_name=RUN)
    merged_model = g.add("SelmaApplyExpert", title="Apply merged expert", model=model.out(0), expert=merged.out(0))
    prompts = held_out_prompts(g)
    positive = g.add("CLIPTextEncode", title="Encode held-out", text=prompts, clip=clip.out(0)).out(0)
    columns = [("base", render(positive, model.out(0), 42, "base"))]
    for skill, node in zip(SKILLS, trained, strict=True):
        columns.append((skill, render(positive, node.out("model"), 42, skill)))
    columns.append(("merged", render(positive, merged_model.out(0), 42, "merged")))
    compare(g, columns, prompts, "Compare: base vs experts vs merged")
