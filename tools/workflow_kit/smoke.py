"""The settings every workflow ships with (the shipped shapes model, CPU-sized) and the read-me note listing them."""

from __future__ import annotations

from .graph import NOTE_TYPE, Graph, Node

# Defaults for a CPU run on the shipped shapes model (64 px); every workflow's note lists them and where they live.
SMOKE = {
    "run_name": "selma_shapes",
    "model": "shapes",
    "prompt_count": 12,
    "sample_steps": 20,
    "cfg": 5.0,
    "resolution": 64,
    "train_steps": 40,
    "rank": 8,
    "batch_size": 4,
    "learning_rate": 5e-4,
}
HELD_OUT = (
    "two red circles\n"
    "a blue square to the left of a green triangle\n"
    "three yellow triangles\n"
    "a purple circle above an orange square"
)

SMOKE_SETTINGS = [
    f"prompt count {SMOKE['prompt_count']}: *SELMA Generate Prompts* -> count",
    f"sampling {SMOKE['sample_steps']} steps, CFG {SMOKE['cfg']}: every *KSampler* -> steps / cfg",
    f"resolution {SMOKE['resolution']}x{SMOKE['resolution']}: the shipped model's size (its loader's latent "
    "output), and *SELMA Train Expert* -> resolution",
    f"training {SMOKE['train_steps']} steps, rank {SMOKE['rank']}, batch {SMOKE['batch_size']}, learning rate "
    f"{SMOKE['learning_rate']}: *SELMA Train Expert* -> steps / rank / batch_size / learning_rate",
    f"run folder: output/selma/{SMOKE['run_name']}/ (run_name widgets); experts are published as "
    f"models/loras/selma/{SMOKE['run_name']}-<skill>.safetensors",
]


def note_text(title: str, purpose: str, settings: list[str], extra: str = "") -> str:
    lines = "\n".join(f"- {s}" for s in settings)
    return f"""# {title}

{purpose}

## Model
*SELMA Load Shipped Model* loads `{SMOKE["model"]}`, the small text-to-image model of the shapes world that
ships with SELMA (64 px; its prompts use the world's words: shapes, colours, sizes, left/right/above/below).
It runs on a CPU in minutes and draws real pictures, and the world's exact checker scores them.

**Your own model (SD1.x, SD2.x, SDXL):** add a *Load Checkpoint* (CheckpointLoaderSimple) node and drag
its MODEL, CLIP and VAE outputs onto every socket the shipped loader feeds; add an *Empty Latent Image*
(512x512 for SD1.5, 1024x1024 for SDXL, batch 1) for its latent socket; set *SELMA Train Expert* ->
resolution to the same size; pick a general skill (counting, spatial, attribute_binding, ...) in *Skill*.
For a smoke run with random weights, from ComfyUI's folder:
`python custom_nodes/comfyui-selma/selma/testing/random_sd15.py models` writes
random_sd15_unet.safetensors / random_clip_l.safetensors / random_sd15_vae.safetensors for the
Load Diffusion Model / Load CLIP / Load VAE nodes. FLUX.1: the *selma_flux_train_merge* workflow.

## Settings (and where to change them)
{lines}

SELMA's real recipe: ~1000+ prompts per skill, 512x512, rank 128, 5000 steps, batch 16 x 4.
{extra}"""


def note(g: Graph, title: str, purpose: str, settings: list[str], extra: str = "") -> Node:
    """The workflow's read-me: a Markdown note left of the graph."""
    return g.add(NOTE_TYPE, text=note_text(title, purpose, settings, extra))
