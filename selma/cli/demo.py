"""`selma demo`: the pipeline end to end on the embedded defaults, offline, on CPU.

Stages so far: skills -> prompts (template LLM, ROUGE-L filter) -> datasets (a tiny random SD model at 32 px,
2 steps, with a contact sheet per skill) -> experts (LoRA rank 4, 20 steps per skill). Later stages join as they
land.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from ..prompt_generation import PromptGenConfig, generate_prompts
from ..skills import builtin_skill
from .progress import TqdmProgress

DEMO_SKILLS = ("counting", "spatial")
DEMO_MODEL = Path("models") / "tiny-sd"  # inside the run dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", default="runs/demo", help="where the artifacts go (default runs/demo)")
    parser.add_argument("--prompts", type=int, default=40, help="prompts per skill (default 40)")


def run(args: argparse.Namespace) -> int:
    from ..llm import LLMConfig

    run_dir = Path(args.run_dir)
    artifacts = []
    for name in DEMO_SKILLS:
        skill = builtin_skill(name)
        with TqdmProgress(desc=f"prompts/{name}", unit="prompt") as progress:
            result = generate_prompts(
                skill, LLMConfig(), run_dir, PromptGenConfig(count=args.prompts), on_progress=progress
            )
        print(result.summary())
        artifacts += [("skill", run_dir / "skills" / f"{name}.json"), ("prompts", result.path)]
    artifacts += render_datasets(run_dir)
    artifacts += train_experts(run_dir)
    print("\nartifacts:")
    for kind, path in artifacts:
        print(f"  {kind:8s} {path}")
    return 0


def tiny_model(run_dir: Path) -> Path:
    """RUN_DIR/models/tiny-sd: a tiny random SD1.x diffusers folder, built once (into a temp folder first, so
    a killed build never leaves a half-written model)."""
    path = run_dir / DEMO_MODEL
    if not (path / "model_index.json").is_file():
        from ..testing.tiny_models import build_tiny_sd

        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".tiny-sd-") as tmp:
            build_tiny_sd(Path(tmp) / "model", sample_size=32)
            shutil.rmtree(path, ignore_errors=True)
            (Path(tmp) / "model").rename(path)
    return path


def render_datasets(run_dir: Path) -> list[tuple[str, Path]]:
    """Stage 2: every demo skill's prompts -> datasets/<skill>/ and a contact sheet beside it."""
    from ..contact_sheet import dataset_contact_sheet, default_sheet_path, save_sheet
    from ..dataset_building import DatasetConfig, build_dataset
    from ..pipelines import load_pipeline

    model = tiny_model(run_dir)
    pipe = load_pipeline(model, device="cpu")
    config = DatasetConfig(batch_size=8, steps=2, width=32, height=32, device="cpu")
    artifacts: list[tuple[str, Path]] = [("model", model)]
    for name in DEMO_SKILLS:
        with TqdmProgress(desc=f"images/{name}", unit="img") as progress:
            result = build_dataset(name, pipe, run_dir, config=config, on_progress=progress, model_name=str(model))
        print(result.summary())
        sheet = save_sheet(dataset_contact_sheet(result.folder), default_sheet_path(result.folder))
        artifacts += [("dataset", result.folder), ("preview", sheet)]
    return artifacts


def train_experts(run_dir: Path) -> list[tuple[str, Path]]:
    """Stage 3: one small LoRA expert per demo skill -> experts/<skill>.safetensors (+ log, loss curve)."""
    from ..dataset_files import dataset_dir
    from ..pipelines import load_pipeline
    from ..training.config import TrainConfig
    from ..training.diffusers_backend import DiffusersBackend
    from ..training.loop import train_expert

    backend = DiffusersBackend(load_pipeline(tiny_model(run_dir), device="cpu"), device="cpu")
    config = TrainConfig(rank=4, alpha=4, resolution=32, batch_size=4, grad_accum=1, steps=20, save_every=10)
    artifacts: list[tuple[str, Path]] = []
    for name in DEMO_SKILLS:
        with TqdmProgress(desc=f"train/{name}", unit="step") as progress:
            result = train_expert(
                backend,
                dataset_dir(run_dir, name),
                run_dir / "experts",
                config,
                skill=name,
                on_step=lambda step, total, loss, progress=progress: progress(step, total),
            )
        print(result.summary())
        artifacts += [("expert", result.expert_path), ("curve", result.loss_curve_path)]
    return artifacts
