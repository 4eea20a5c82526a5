"""`selma images`: render RUN_DIR/prompts/<skill>.jsonl into RUN_DIR/datasets/<skill>/ (resumes).

On several GPUs run it under HF Accelerate; each process renders the prompts i % num_processes ==
process_index into the same folders:

    accelerate launch --multi_gpu --num_processes 4 -m selma images --run-dir runs/r1 --model ./sd15

With --filter-threshold T, each skill's images are then scored with DSG by an answerer (--answerer; on the shapes
model the world's exact checker by default) and those scoring >= T are copied to RUN_DIR/filtered/<skill>/ with
every score in scores.jsonl (train on it with `selma train --data filtered`). Resumes like the rendering.

(`--multi_gpu` is accelerate's torchrun launcher; on a machine without GPUs the same command starts CPU
processes that talk over gloo. accelerate's `--cpu --num_processes N` starts only one process unless MPI
is installed.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..shapes.renderer_pipeline import RENDERER_MODEL, load_data_pipeline
from .answerer_args import add_answerer_arguments, answerer_from_args
from .progress import TqdmProgress

EXIT_INCOMPLETE = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", required=True, help="the run directory (prompts/ in, datasets/ out)")
    parser.add_argument(
        "--model",
        required=True,
        help="a diffusers folder, a .safetensors/.ckpt checkpoint, a hub id (e.g. stable-diffusion-v1-5/...), "
        "'shapes' (the shipped model) or 'renderer' (the shapes world's renderer: each prompt drawn exactly)",
    )
    parser.add_argument("--skill", action="append", help="skill to render; repeatable (default: all prompts/*.jsonl)")
    parser.add_argument("--batch-size", type=int, default=4, help="prompts per pipeline call (default 4)")
    parser.add_argument("--steps", type=int, help="denoising steps (default: the pipeline's, 50 for SD)")
    parser.add_argument("--guidance", type=float, help="CFG scale (default: the pipeline's, 7.5 for SD1.x)")
    parser.add_argument("--width", type=int, help="pixels, a multiple of 8 (default: the model's size)")
    parser.add_argument("--height", type=int, help="pixels, a multiple of 8 (default: the model's size)")
    parser.add_argument("--seed", type=int, default=0, help="run seed; each image's seed derives from it")
    parser.add_argument("--negative-prompt", default="", help="one negative prompt for every image")
    parser.add_argument("--image-format", default="png", choices=["png", "jpg", "webp"])
    parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps")
    parser.add_argument("--dtype", default="auto", help="auto (float16 on GPU, float32 on CPU), float32, bfloat16")
    parser.add_argument(
        "--config-folder", help="single-file checkpoints offline: a local diffusers folder of the same architecture"
    )
    group = parser.add_argument_group("DSG filter (filtered self-generated data)")
    group.add_argument(
        "--filter-threshold", type=float, help="keep the images whose DSG is >= T (0 < T <= 1) in filtered/<skill>/"
    )
    add_answerer_arguments(
        group,
        "who answers the DSG questions: programmatic=shapes (default on --model shapes), transformers=VLM, "
        "blip=ID, openai=MODEL",
    )


def filter_answerer(args: argparse.Namespace):
    """The answerer of --filter-threshold: --answerer, or the shapes checker on the shapes model; None: no filter."""
    from ..evaluation.answerer import AnswererConfig
    from ..pipeline.evaluate_config import SHAPES_CHECKER

    if args.filter_threshold is None:
        if args.answerer:
            raise ValueError("--answerer is for the DSG filter: add --filter-threshold T (e.g. 0.75)")
        return None
    from ..evaluation.dataset_filter import check_threshold

    check_threshold(args.filter_threshold)
    if not args.answerer:
        if args.model not in (SHAPES_CHECKER["model"], RENDERER_MODEL):
            raise ValueError(
                "--filter-threshold needs --answerer BACKEND=MODEL (e.g. transformers=path/to/vlm) to score the "
                f"images of {args.model!r}; only the shapes model has a default (its exact checker)"
            )
        return AnswererConfig(**SHAPES_CHECKER)
    return answerer_from_args(args)


def skills_in(run_dir: Path) -> list[str]:
    names = sorted(p.stem for p in (run_dir / "prompts").glob("*.jsonl"))
    if not names:
        raise ValueError(
            f"{run_dir / 'prompts'} has no <skill>.jsonl files; run `selma prompts --run-dir {run_dir}` first"
        )
    return names


def process_share(device: str):
    """accelerate's PartialState (one process, or this process of `accelerate launch`) and the device to use."""
    import torch
    from accelerate import PartialState

    # Without cpu=True, PartialState on a GPU-less machine ignores torchrun's WORLD_SIZE and every process
    # would render everything.
    state = PartialState(cpu=device == "cpu" or not torch.cuda.is_available())
    if device == "auto" and state.device.type == "cuda":
        device = str(state.device)  # cuda:LOCAL_RANK: one GPU per process
    return state, device


def run(args: argparse.Namespace) -> int:
    from ..datasets.rendering import DatasetConfig, build_dataset, pending_indices

    run_dir = Path(args.run_dir)
    skills = args.skill or skills_in(run_dir)
    if args.model != RENDERER_MODEL:
        from ..models.pipelines import source_kind

        source_kind(args.model)  # a model that does not exist is an error, even with nothing left to render
    answerer = filter_answerer(args)  # bad filter flags fail before any model loads
    state, device = process_share(args.device)
    config = DatasetConfig(
        batch_size=args.batch_size,
        steps=args.steps,
        guidance=args.guidance,
        width=args.width,
        height=args.height,
        seed=args.seed,
        negative_prompt=args.negative_prompt,
        image_format=args.image_format,
        device=device,
        dtype=args.dtype,
        config_folder=args.config_folder,
    )
    share = {"process_index": state.process_index, "num_processes": state.num_processes}
    pipe = None  # loaded once, and only if some skill still has images to render
    status = 0
    for skill in skills:
        if pipe is None and pending_indices(run_dir, skill, **share):
            pipe = load_data_pipeline(args.model, device=device, dtype=args.dtype, config_folder=args.config_folder)
        suffix = f" [{state.process_index + 1}/{state.num_processes}]" if state.num_processes > 1 else ""
        lock = _launch_lock(run_dir, skill, state)
        try:
            with TqdmProgress(desc=f"images/{skill}{suffix}", unit="img") as progress:
                result = build_dataset(
                    skill,
                    pipe or args.model,
                    run_dir,
                    config=config,
                    on_progress=progress if state.is_main_process else None,
                    model_name=args.model,
                    **share,
                )
            state.wait_for_everyone()  # the summary counts every process's images
        finally:
            if lock is not None:
                _release_launch_lock(run_dir, skill, lock)
        if state.is_main_process:
            result.count = _images_on_disk(result.folder)
            note = f" (this process's share of {state.num_processes})" if state.num_processes > 1 else ""
            print(result.summary() + note)
            if not result.complete:
                print(f"selma images: {skill}: incomplete; rerun to render the rest", file=sys.stderr)
                status = EXIT_INCOMPLETE
            elif answerer is not None:
                print(_filter(run_dir, skill, answerer, args.filter_threshold).summary())
    return status


def _launch_lock(run_dir: Path, skill: str, state):
    """Under `accelerate launch` the main process holds the skill's images stage for all its shards (one process
    alone: build_dataset takes it)."""
    if state.num_processes == 1 or not state.is_main_process:
        return None
    from ..datasets.files import dataset_dir
    from ..stage_lock import acquire

    folder = dataset_dir(run_dir, skill)
    return acquire(folder, "images", f"rendering the dataset of {skill!r} into {folder}")


def _release_launch_lock(run_dir: Path, skill: str, lock: Path) -> None:
    from ..datasets.files import DatasetWriter, dataset_dir
    from ..stage_lock import release

    DatasetWriter(dataset_dir(run_dir, skill)).remove_lock_file()  # every shard is done: wait_for_everyone
    release(lock)


def _filter(run_dir: Path, skill_name: str, answerer, threshold: float):
    from ..pipeline.filter_step import filter_run_skill
    from ..prompts.skills import load_skills_file, resolve_skill

    saved = run_dir / "skills" / f"{skill_name}.json"  # what `selma prompts` wrote with the skill's prompts
    skill = load_skills_file(saved)[0] if saved.is_file() else resolve_skill(skill_name)
    with TqdmProgress(desc=f"filter/{skill_name}", unit="img") as progress:
        return filter_run_skill(run_dir, skill, answerer, threshold, on_progress=progress)


def _images_on_disk(folder: Path) -> int:
    from ..datasets.files import read_dataset

    return len(read_dataset(folder))
