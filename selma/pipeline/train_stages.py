"""The training stages of a run: one expert per skill ([train]) and the joint expert ([joint]): one LoRA on the
union of every skill's dataset, SELMA's baseline for the merged expert. Both resume; a finished expert loads no
model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .evaluate_config import JOINT_NAME
from .report import StageReport
from .stage_state import resolve_model, training_dataset, training_finished

if TYPE_CHECKING:
    from .run_config import RunConfig


def train_stage(config: RunConfig, progress) -> StageReport:
    from ..training.loop import ExpertPaths, train_expert

    report = StageReport("train")
    backend = None
    for skill in config.skills:
        name = skill.name
        paths = ExpertPaths(config.run_dir / "experts", name)
        if training_finished(paths, config.train):
            report.lines.append(f"{name}: already trained to {config.train.steps} steps -> {paths.expert}")
        else:
            if backend is None:  # the model is loaded only when an expert has steps left
                backend = training_backend(config)
            step_progress = progress(f"train/{name}")
            result = train_expert(
                backend,
                training_dataset(config, name),
                paths.out_dir,
                config.train,
                skill=name,
                on_step=lambda step, total, loss, p=step_progress: p(step, total),
            )
            report.did_work = True
            report.lines.append(result.summary())
        report.artifacts += [("expert", paths.expert), ("curve", paths.loss_curve), ("train-log", paths.log)]
    return report


def training_backend(config: RunConfig):
    from ..models.pipelines import load_pipeline, resolve_device
    from ..training.diffusers_backend import load_diffusers_backend

    device = resolve_device(config.train_device)
    pipe = load_pipeline(resolve_model(config, config.train_model), device=device)
    return load_diffusers_backend(pipe, device=device)  # SD1.x/2.x/SDXL UNets; FLUX.1 / SD3 flow matching


def joint_stage(config: RunConfig, progress) -> StageReport:
    from ..training.loop import ExpertPaths, train_expert

    report = StageReport("joint")
    if config.joint is None:
        report.lines.append("disabled ([joint] enabled = false)")
        return report
    paths = ExpertPaths(config.run_dir / "experts", JOINT_NAME)
    if training_finished(paths, config.joint):
        report.lines.append(f"{JOINT_NAME}: already trained to {config.joint.steps} steps -> {paths.expert}")
    else:
        step_progress = progress(f"train/{JOINT_NAME}")
        result = train_expert(
            training_backend(config),
            [training_dataset(config, s.name) for s in config.skills],
            paths.out_dir,
            config.joint,
            skill=JOINT_NAME,
            on_step=lambda step, total, loss: step_progress(step, total),
        )
        report.did_work = True
        report.lines.append(result.summary())
    report.artifacts += [("joint", paths.expert), ("curve", paths.loss_curve)]
    return report
