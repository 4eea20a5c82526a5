"""`selma train`: train one expert per skill (LoRA, or StyleInject with --method styleinject) from
RUN_DIR/datasets/<skill>/ into RUN_DIR/experts/.

    selma train --run-dir runs/r1 --model ./sd15 --skill counting
    selma train --run-dir runs/r1 --model ./sd15 --skill art --method styleinject --num-styles 4 \
        --rank 32 --alpha 32 --target-modules to_q,to_v          # the StyleInject paper's setting

Writes RUN_DIR/experts/<skill>.safetensors and RUN_DIR/experts/<skill>/ (checkpoint, train log, loss
curve, previews). Several --skill train one after another; separate calls for different skills may run
side by side. Data parallel on several GPUs: `accelerate launch -m selma train ...` (the same arguments).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..datasets.files import dataset_dir, filtered_dataset_dir, read_dataset
from ..training.config import METHODS, MIXED_PRECISION, TrainConfig
from .progress import TqdmProgress

# CLI flag -> TrainConfig field; a flag left out keeps the config's default (SELMA's recipe).
_OVERRIDES = {
    "rank": "rank",
    "alpha": "alpha",
    "lr": "learning_rate",
    "lr_warmup_steps": "lr_warmup_steps",
    "steps": "steps",
    "batch_size": "batch_size",
    "grad_accum": "grad_accum",
    "save_every": "save_every",
    "preview_every": "preview_every",
    "preview_prompt": "preview_prompts",
    "resolution": "resolution",
    "bucket_step": "bucket_step",
    "mixed_precision": "mixed_precision",
    "seed": "seed",
    "method": "method",
    "num_styles": "num_styles",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    parser.add_argument("--run-dir", required=True, help="run directory with datasets/<skill>/")
    parser.add_argument(
        "--model", required=True, help="base model: a diffusers folder, a .safetensors/.ckpt file, or a hub id"
    )
    parser.add_argument(
        "--config-folder",
        help="single-file checkpoints: a diffusers folder (or, for FLUX/SD3, a hub id) of the same architecture "
        "whose configs, text encoders and VAE complete the file",
    )
    parser.add_argument("--skill", action="append", required=True, help="skill to train; repeatable")
    parser.add_argument(
        "--data",
        choices=("datasets", "filtered"),
        default="datasets",
        help="train on RUN_DIR/datasets/<skill>/ (default) or on the DSG-filtered RUN_DIR/filtered/<skill>/ "
        "(`selma images --filter-threshold T`)",
    )
    parser.add_argument(
        "--method", choices=METHODS, help=f"adapter kind (default {d.method}); styleinject: see --num-styles"
    )
    parser.add_argument(
        "--num-styles",
        type=int,
        help=f"StyleInject: down-projections mixed by the router (default {d.num_styles}; the paper: 4 or 16)",
    )
    ablation = parser.add_mutually_exclusive_group()
    ablation.add_argument(
        "--dma-only", action="store_true", help="StyleInject without the AdaIN hypernetwork (the paper's 'DMA alone')"
    )
    ablation.add_argument(
        "--sta-only",
        action="store_true",
        help="StyleInject with one style and no router (the paper's 'STA alone'; sets --num-styles 1)",
    )
    parser.add_argument("--rank", type=int, help=f"rank (default {d.rank}; StyleInject: of every A_i and of B)")
    parser.add_argument("--alpha", type=float, help=f"alpha; updates are scaled by alpha / rank (default {d.alpha:g})")
    parser.add_argument(
        "--target-modules", help=f"comma-separated module names to adapt (default {','.join(d.target_modules)})"
    )
    parser.add_argument("--lr", type=float, help=f"learning rate (default {d.learning_rate:g}, constant)")
    parser.add_argument("--lr-warmup-steps", type=int, help="linear warmup steps (default 0)")
    parser.add_argument("--steps", type=int, help=f"optimizer steps (default {d.steps})")
    parser.add_argument("--batch-size", type=int, help=f"examples per micro-batch and GPU (default {d.batch_size})")
    parser.add_argument("--grad-accum", type=int, help=f"micro-batches per optimizer step (default {d.grad_accum})")
    parser.add_argument(
        "--save-every", type=int, help=f"checkpoint every N steps, 0 = at the end only (default {d.save_every})"
    )
    parser.add_argument("--preview-every", type=int, help="render previews every N steps (default 0 = never)")
    parser.add_argument(
        "--preview-prompt", action="append", help="prompt for previews; repeatable (default: the first two captions)"
    )
    parser.add_argument("--resolution", type=int, help=f"training image side in pixels (default {d.resolution})")
    parser.add_argument(
        "--aspect-buckets",
        action="store_true",
        help="train each image at the bucket nearest its aspect ratio (about resolution² pixels, up to 2:1) "
        "instead of a center-cropped square: for datasets of mixed sizes",
    )
    parser.add_argument(
        "--bucket-step", type=int, help=f"bucket sides are multiples of this (default {d.bucket_step})"
    )
    parser.add_argument(
        "--mixed-precision", choices=MIXED_PRECISION, help="auto = fp16 on CUDA, fp32 elsewhere (default auto)"
    )
    parser.add_argument("--gradient-checkpointing", action="store_true", help="less memory, ~30%% slower steps")
    parser.add_argument("--no-cache", action="store_true", help="encode images and captions every step")
    parser.add_argument("--seed", type=int, help="seed of the adapter init and of every batch (default 0)")
    parser.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="continue from the skill's checkpoint if there is one (default); --no-resume starts over",
    )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = {field: getattr(args, flag) for flag, field in _OVERRIDES.items() if getattr(args, flag) is not None}
    if args.target_modules:
        values["target_modules"] = tuple(t.strip() for t in args.target_modules.split(",") if t.strip())
    if args.gradient_checkpointing:
        values["gradient_checkpointing"] = True
    if args.aspect_buckets:
        values["aspect_buckets"] = True
    if args.no_cache:
        values["cache_latents"] = values["cache_text"] = False
    if args.dma_only:
        values["use_sta"] = False
    if args.sta_only:
        values["use_dma"] = False
        values.setdefault("num_styles", 1)  # 'STA alone' is one style by definition; an explicit other n is refused
    return TrainConfig(**values)


def run(args: argparse.Namespace) -> int:
    from accelerate import PartialState

    from ..training.diffusers_backend import load_diffusers_backend
    from ..training.loop import train_expert

    config = config_from_args(args)  # check the settings before loading a model
    run_dir = Path(args.run_dir)
    folders = {skill: _training_folder(run_dir, skill, args.data) for skill in args.skill}
    from ..models.pipelines import resolve_device

    # Under `accelerate launch` (or torchrun) this is the process's rank and device. On a machine without a GPU
    # accelerate only forms a multi-process (gloo) group when told to use the CPU.
    state = PartialState(cpu=resolve_device("auto") == "cpu")
    backend = load_diffusers_backend(
        args.model,
        device=state.device,
        dtype=config.weight_dtype(state.device.type),
        config_folder=args.config_folder,
    )
    for skill in args.skill:
        with TqdmProgress(desc=f"train/{skill}", unit="step") as progress:

            def on_step(step: int, total: int, loss: float, progress: TqdmProgress = progress) -> None:
                if state.is_main_process:
                    progress(step, total)
                    progress.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

            result = train_expert(
                backend,
                folders[skill],
                run_dir / "experts",
                config,
                skill=skill,
                on_step=on_step,
                resume=args.resume,
            )
        if state.is_main_process:
            print(result.summary())
    return 0


def _training_folder(run_dir: Path, skill: str, data: str) -> Path:
    """The skill's dataset folder, checked before any model loads."""
    if data == "datasets":
        folder = dataset_dir(run_dir, skill)
    else:
        folder = filtered_dataset_dir(run_dir, skill)
        if not folder.is_dir():
            raise ValueError(
                f"{folder} does not exist; write it with `selma images --run-dir {run_dir} --skill {skill} "
                "--filter-threshold T` (or train on --data datasets)"
            )
    read_dataset(folder, check_files=False)
    return folder
