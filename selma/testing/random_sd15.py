"""Random-weight SD1.5-size model files that a real ComfyUI loads, for checks and benchmarks offline.

No SD weights can be downloaded here, and ComfyUI only recognises real architectures (a tiny UNet is not
detected as any model), so checks inside ComfyUI use SD1.5-size components with random weights, written
in formats its loaders read: a diffusers-format UNet (UNETLoader, models/diffusion_models), a Hugging Face
CLIP-L text encoder (CLIPLoader type stable_diffusion, models/text_encoders) and a diffusers-format VAE
(VAELoader, models/vae).

    python -m selma.testing.random_sd15 COMFYUI_DIR/models                        # where selma is installed
    python custom_nodes/comfyui-selma/selma/testing/random_sd15.py models         # from ComfyUI's folder
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:  # run by its path, with a Python that has no `selma` installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import selma.testing  # noqa: F401  (the package of the relative import below)

    __package__ = "selma.testing"

import torch
from safetensors.torch import save_file

from .tiny_models import build_sd15_unet

UNET_FILE = "diffusion_models/random_sd15_unet.safetensors"
CLIP_FILE = "text_encoders/random_clip_l.safetensors"
VAE_FILE = "vae/random_sd15_vae.safetensors"


def _save(
    module: torch.nn.Module, path: Path, dtype: torch.dtype, prefix: str = "", extra: dict | None = None
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        (k if k.startswith(prefix) or k in (extra or {}) else prefix + k): v.to(dtype).contiguous()
        for k, v in {**module.state_dict(), **(extra or {})}.items()
        if "position_ids" not in k
    }
    save_file(state, str(path))


def write_random_sd15(models_dir: str | Path, *, seed: int = 0, dtype: torch.dtype = torch.float16) -> dict[str, Path]:
    """Write the three component files under `models_dir` (ComfyUI's models/); returns their paths."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel

    models_dir = Path(models_dir)
    paths = {"unet": models_dir / UNET_FILE, "clip": models_dir / CLIP_FILE, "vae": models_dir / VAE_FILE}
    torch.manual_seed(seed)
    unet = build_sd15_unet(device="cpu", seed=seed)
    # Random init has no scale control; shrink the weights so activations stay finite through 16 blocks in fp16.
    with torch.no_grad():
        for p in unet.parameters():
            p.mul_(0.5)
    _save(unet, paths["unet"], dtype)
    del unet
    clip = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                        num_attention_heads=12, max_position_embeddings=77, vocab_size=49408,
                                        projection_dim=768, hidden_act="quick_gelu"))  # fmt: skip
    # transformers 5 drops the "text_model." prefix from CLIPTextModel's state dict; CLIP-L files carry it, and
    # the pooled output's projection (CLIPTextModelWithProjection's), which ComfyUI reports missing without it.
    projection = {"text_projection.weight": torch.eye(768)}
    _save(clip, paths["clip"], dtype, prefix="text_model.", extra=projection)
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4, sample_size=512,
    )  # fmt: skip
    _save(vae, paths["vae"], dtype)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog=Path(sys.argv[0]).name)
    parser.add_argument("models_dir", help="ComfyUI's models/ folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for kind, path in write_random_sd15(args.models_dir, seed=args.seed).items():
        print(f"{kind:5s} {path}")


if __name__ == "__main__":
    main()
