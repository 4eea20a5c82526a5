"""The CPU smoke settings every workflow ships with (random weights, tiny sizes) and the read-me note listing them."""

from __future__ import annotations

from .graph import NOTE_TYPE, Graph, Node

# Smoke settings for a CPU run with random weights; every workflow's note lists them and where they live.
SMOKE = {
    "run_name": "selma_smoke",
    "prompt_count": 3,
    "sample_steps": 2,
    "resolution": 64,
    "train_steps": 3,
    "rank": 4,
    "batch_size": 1,
}
UNET_FILE = "random_sd15_unet.safetensors"
CLIP_FILE = "random_clip_l.safetensors"
VAE_FILE = "random_sd15_vae.safetensors"
HELD_OUT = "three red apples on a wooden table\na blue cup to the left of a green book"

SMOKE_SETTINGS = [
    f"prompt count {SMOKE['prompt_count']}: *SELMA Generate Prompts* -> count",
    f"sampling steps {SMOKE['sample_steps']}: every *KSampler* -> steps",
    f"resolution {SMOKE['resolution']}x{SMOKE['resolution']}: *Empty Latent Image* -> width/height, "
    "and *SELMA Train Expert* -> resolution",
    f"training {SMOKE['train_steps']} steps, rank {SMOKE['rank']}, batch {SMOKE['batch_size']}: "
    "*SELMA Train Expert* -> steps / rank / batch_size",
    f"run folder: output/selma/{SMOKE['run_name']}/ (run_name widgets); experts are published as "
    f"models/loras/selma/{SMOKE['run_name']}-<skill>.safetensors",
]


def note_text(title: str, purpose: str, settings: list[str], extra: str = "") -> str:
    lines = "\n".join(f"- {s}" for s in settings)
    return f"""# {title}

{purpose}

## Models
The loaders default to random-weight SD1.5-size files for smoke runs (write them with
`python -m selma.testing.random_sd15 COMFYUI_DIR/models`):
`{UNET_FILE}` (Load Diffusion Model), `{CLIP_FILE}` (Load CLIP, type stable_diffusion),
`{VAE_FILE}` (Load VAE).

**Real checkpoint:** add a *Load Checkpoint* (CheckpointLoaderSimple) node and drag its MODEL, CLIP and
VAE outputs onto every socket the three loaders feed, then delete the loaders. Or pick your own files in
the three loaders.

## CPU smoke settings (and where to change them)
{lines}

SELMA's real recipe: ~1000+ prompts per skill, 512x512, rank 128, 5000 steps, batch 16 x 4.
{extra}"""


def note(g: Graph, title: str, purpose: str, settings: list[str], extra: str = "") -> Node:
    """The workflow's read-me: a Markdown note left of the graph."""
    return g.add(NOTE_TYPE, text=note_text(title, purpose, settings, extra))
