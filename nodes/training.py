"""Node for SELMA's third stage: train a skill expert on the MODEL the user has loaded (loading is experts.py)."""

from __future__ import annotations

import shutil

from ..selma.experts.ref import ExpertRef
from ..selma.training.config import METHODS, TrainConfig
from .glue.apply_expert import apply_expert_to_model
from .glue.comfy_env import (
    LORAS,
    STYLE_INJECT,
    check_run_name,
    model_directory,
    progress_reporter,
    run_directory,
    send_to_ui,
)
from .glue.images import image_to_tensor

CATEGORY = "SELMA/experts"


class SelmaTrainExpert:
    DESCRIPTION = (
        "Trains one skill expert (LoRA, SELMA's recipe by default) on a SELMA dataset, with the MODEL, CLIP and "
        "VAE you have loaded (SD1.x, SD2.x, SDXL; FLUX.1 and SD3 LoRA). Cancel keeps the last checkpoint; running "
        "again resumes it. The expert is saved in models/loras/selma/ (StyleInject: models/styleinject/selma/) and "
        "applied to the MODEL output."
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = ("SELMA_EXPERT", "MODEL", "IMAGE")
    RETURN_NAMES = ("expert", "model", "loss_curve")
    OUTPUT_TOOLTIPS = (
        "the trained expert, for SELMA Merge Experts or Apply Expert",
        "the MODEL with the expert applied",
        "the loss of every step",
    )
    OUTPUT_NODE = True
    FUNCTION = "train"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (
                    "MODEL",
                    {"tooltip": "the model to teach (SD1.x, SD2.x, SDXL, FLUX.1, SD3); it is cloned, never changed"},
                ),
                "clip": ("CLIP", {"tooltip": "encodes the dataset's prompts (cached once)"}),
                "vae": ("VAE", {"tooltip": "encodes the dataset's images to latents (cached once)"}),
                "dataset": ("SELMA_DATASET", {"tooltip": "from SELMA Dataset Writer, Load Dataset or Filter Dataset"}),
                "method": (list(METHODS), {"default": "lora", "tooltip": "lora (SELMA) or styleinject"}),
                "rank": ("INT", {"default": 128, "min": 1, "max": 1024, "tooltip": "SELMA: 128"}),
                "alpha": ("FLOAT", {"default": 128.0, "min": 0.01, "max": 4096.0, "tooltip": "scale = alpha/rank"}),
                "steps": ("INT", {"default": 5000, "min": 1, "max": 1000000, "tooltip": "SELMA: 5000"}),
                "learning_rate": (
                    "FLOAT",
                    {
                        "default": 3e-4,
                        "min": 1e-7,
                        "max": 1.0,
                        "step": 1e-5,
                        "round": False,
                        "tooltip": "SELMA: 3e-4, constant",
                    },
                ),
                "batch_size": (
                    "INT",
                    {"default": 16, "min": 1, "max": 512, "tooltip": "images per micro-batch; SELMA: 16"},
                ),
                "grad_accumulation": ("INT", {"default": 4, "min": 1, "max": 512, "tooltip": "SELMA: 16 x 4 = 64"}),
                "resolution": (
                    "INT",
                    {
                        "default": 512,
                        "min": 64,
                        "max": 2048,
                        "step": 8,
                        "tooltip": "training size in pixels (the model's native one)",
                    },
                ),
                "seed": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 0x7FFFFFFF,
                        "tooltip": "the init, batch order, noise and timesteps",
                    },
                ),
                "save_every": ("INT", {"default": 500, "min": 0, "max": 1000000, "tooltip": "checkpoint period"}),
                "gradient_checkpointing": ("BOOLEAN", {"default": False, "tooltip": "less memory, ~30% slower"}),
                "run_name": ("STRING", {"default": "selma", "tooltip": "work folder: output/selma/<run>/experts/"}),
            },
            "optional": {
                "preview_every": ("INT", {"default": 0, "min": 0, "max": 1000000, "tooltip": "0 = no previews"}),
                "preview_prompt": (
                    "STRING",
                    {"default": "", "multiline": True, "tooltip": "drawn every preview_every steps"},
                ),
                "num_styles": ("INT", {"default": 4, "min": 1, "max": 64, "tooltip": "styleinject: routed styles"}),
                "aspect_buckets": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "mixed-size datasets: each image at the bucket nearest its aspect (about "
                        "resolution² px, multiples of 64, up to 2:1) instead of a square crop",
                    },
                ),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    VALIDATE_INPUTS = staticmethod(check_run_name)

    def train(
        self,
        model,
        clip,
        vae,
        dataset,
        method,
        rank,
        alpha,
        steps,
        learning_rate,
        batch_size,
        grad_accumulation,
        resolution,
        seed,
        save_every,
        gradient_checkpointing,
        run_name,
        preview_every=0,
        preview_prompt="",
        num_styles=4,
        aspect_buckets=False,
        unique_id=None,
    ):
        import torch

        from ..selma.training.loop import train_expert
        from .glue.dit_training_backend import comfy_training_backend

        config = TrainConfig(
            method=method,
            rank=rank,
            alpha=alpha,
            steps=steps,
            learning_rate=learning_rate,
            batch_size=batch_size,
            grad_accum=grad_accumulation,
            resolution=resolution,
            seed=seed,
            save_every=save_every,
            gradient_checkpointing=gradient_checkpointing,
            preview_every=preview_every if preview_prompt.strip() else 0,
            preview_prompts=tuple(p for p in preview_prompt.splitlines() if p.strip()),
            **({"num_styles": num_styles} if method == "styleinject" else {}),
            aspect_buckets=aspect_buckets,
        )
        progress = progress_reporter(steps)

        def on_step(step: int, total: int, loss: float) -> None:
            send_to_ui("selma.train.progress", {"node": unique_id, "step": step, "total": total, "loss": loss})
            progress(step, total)

        with torch.inference_mode(False):
            backend = comfy_training_backend(model, clip, vae, resolution)  # FLUX.1, SD3 or an SD-family UNet
            if method == "styleinject" and getattr(backend, "family", None):
                raise ValueError("StyleInject on FLUX / SD3 is not supported in ComfyUI yet; use method 'lora'")
            try:
                backend.prepare()
                result = train_expert(
                    backend,
                    dataset.folder,
                    run_directory(run_name) / "experts",
                    config,
                    skill=dataset.skill,
                    on_step=on_step,
                )
            finally:
                backend.close()
        folder = STYLE_INJECT if method == "styleinject" else LORAS  # stock LoraLoader cannot apply StyleInject
        published = model_directory(folder) / "selma" / f"{run_name}-{dataset.skill}.safetensors"
        published.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result.expert_path, published.with_suffix(".tmp"))
        published.with_suffix(".tmp").replace(published)
        expert = ExpertRef(published, result.expert if method == "lora" else None, method, dataset.skill)
        curve = image_to_tensor(result.loss_curve_path)
        return {
            "ui": {"text": [result.summary()]},
            "result": (expert, apply_expert_to_model(model, published, 1.0, method), curve),
        }


NODE_CLASS_MAPPINGS = {"SelmaTrainExpert": SelmaTrainExpert}
NODE_DISPLAY_NAME_MAPPINGS = {"SelmaTrainExpert": "SELMA Train Expert"}
