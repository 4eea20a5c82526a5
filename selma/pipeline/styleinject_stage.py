"""The StyleInject stage of a run: one StyleInject expert trained on a skill's dataset, then its routers inspected.

    [styleinject]
    enabled = true
    skill = "counting"          # whose dataset it trains on (default: the first skill)
    num_styles = 4              # + any TrainConfig field; the rest comes from [train], method is 'styleinject'
    inspect_prompts = 2         # the skill's held-out prompts sampled with the expert while recording the routers
    inspect_steps = 2

Writes experts/styleinject/<skill>.safetensors (+ its work folder) and router/<skill>/: router.json, a layers x
steps heatmap per prompt and branch, and embedding.png (the router vectors across prompts, the paper's Fig. 9).
Resumes like training; the inspection is skipped when router.json is newer than the expert.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .stage_state import is_up_to_date, resolve_model, training_dataset, training_finished

if TYPE_CHECKING:
    from .run_config import RunConfig


def styleinject_stage(config: RunConfig, progress, report) -> None:
    """Train (or resume) the StyleInject expert and inspect its routers; fills `report` (a StageReport)."""
    from ..models.pipelines import load_pipeline, resolve_device
    from ..prompts.generation import load_prompts
    from ..prompts.held_out import held_out_prompts
    from ..training.diffusers_backend import load_diffusers_backend
    from ..training.loop import ExpertPaths, train_expert

    stage = config.styleinject
    if stage is None:
        report.lines.append("disabled (add [styleinject] enabled = true)")
        return
    paths = ExpertPaths(config.run_dir / "experts" / "styleinject", stage.skill)
    device = resolve_device(config.train_device)
    if training_finished(paths, stage.train):
        report.lines.append(f"{stage.skill}: already trained to {stage.train.steps} steps -> {paths.expert}")
    else:
        backend = load_diffusers_backend(
            load_pipeline(resolve_model(config, config.train_model), device=device), device=device
        )
        step_progress = progress(f"styleinject/{stage.skill}")
        result = train_expert(
            backend,
            training_dataset(config, stage.skill),
            paths.out_dir,
            stage.train,
            skill=stage.skill,
            on_step=lambda step, total, loss: step_progress(step, total),
        )
        report.did_work = True
        report.lines.append(f"styleinject {result.summary()}")
    report.artifacts += [("styleinject", paths.expert), ("curve", paths.loss_curve)]

    skill = next(s for s in config.skills if s.name == stage.skill)
    out = config.run_dir / "router" / stage.skill
    written = [out / "router.json", out / "embedding.png"]
    if is_up_to_date(written, [paths.expert]):
        report.lines.append(f"router inspection up to date: {out}")
    else:
        # As many as the comparison will want too: the saved held-out file is shared with the compare stage.
        count = max(stage.inspect_prompts, config.compare.prompts if config.compare else 0)
        prompts = held_out_prompts(
            config.run_dir,
            skill,
            load_prompts(config.run_dir, skill.name),
            count,
            llm=config.llm,
            seed=config.prompts.seed,
            threshold=config.prompts.threshold,
        )[: stage.inspect_prompts]
        written = _inspect(config, paths.expert, prompts, stage.inspect_steps, out, progress(f"router/{skill.name}"))
        report.did_work = True
        report.lines.append(f"router inspection of {len(prompts)} prompt(s) x {stage.inspect_steps} steps -> {out}")
    report.artifacts += [("router", out / "router.json"), ("heatmap", out / "heatmap_00_cond.png")]
    report.artifacts.append(("embedding", out / "embedding.png"))


def _inspect(config: RunConfig, expert_path: Path, prompts: list[str], steps: int, out: Path, progress) -> list[Path]:
    from ..experts.style_inject_files import apply_style_inject_expert, load_style_inject_expert
    from ..inspection.router_plots import embedding, heatmap, save_png
    from ..inspection.router_report import inspect_router
    from ..models.pipelines import denoiser_of, load_pipeline

    expert = load_style_inject_expert(expert_path)
    pipe = load_pipeline(resolve_model(config, config.train_model), device=config.images.device)
    apply_style_inject_expert(denoiser_of(pipe), expert)
    size = {"height": config.images.height, "width": config.images.width}
    report = inspect_router(pipe, prompts, steps=steps, guidance=7.5, seed=0, on_progress=progress, **size)
    report.settings["expert"] = expert_path.name
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for index in range(len(report.prompts)):
        for branch in report.branches:
            written.append(save_png(heatmap(report, index, branch), out / f"heatmap_{index:02d}_{branch}.png"))
    written.append(save_png(embedding(report), out / "embedding.png"))
    # router.json last: it marks a finished inspection (the stage is skipped when it is newer than the expert)
    written.append(report.save(out / "router.json"))
    return written
