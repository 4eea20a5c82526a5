"""The whole SELMA pipeline from one RunConfig: skills -> prompts -> datasets -> experts -> merge -> evaluation ->
comparison.

`selma run CONFIG` and `selma demo` both call `run_pipeline`. The StyleInject expert and its router inspection are
an optional stage (styleinject_stage.py). Every stage resumes: prompts, images and training
continue where they stopped (and do nothing when complete); merge and comparison are skipped when their outputs
exist and are newer than their inputs. Models are loaded only by stages that have work to do, so a rerun of a
finished run returns in seconds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from ..atomic_files import write_text_atomic
from .report import RunResult, StageReport
from .run_config import MERGED_NAME, RENDERER_MODEL, SHAPES_MODEL, TINY_MODEL, RunConfig
from .stage_state import is_up_to_date, resolve_model
from .train_stages import joint_stage, train_stage

log = logging.getLogger(__name__)

StageProgressFn = Callable[[str, int, int], None]  # (what, done, total), e.g. ("images/counting", 3, 8)
NAMED_SOURCES = (TINY_MODEL, RENDERER_MODEL, SHAPES_MODEL)  # recorded in datasets by name, not by their folder
STAGES = ("prompts", "images", "train", "joint", "styleinject", "merge", "evaluate", "compare")


def run_pipeline(
    config: RunConfig, *, stages: tuple[str, ...] = STAGES, on_progress: StageProgressFn | None = None
) -> RunResult:
    """Run (or resume) every stage of `config` in order; `stages` picks a subset (in pipeline order)."""
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; the stages are {', '.join(STAGES)}")
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "run_config.json", json.dumps(config.to_json(), indent=1) + "\n")

    def progress(what: str) -> Callable[[int, int], None]:
        return lambda done, total: on_progress(what, done, total) if on_progress else None

    runners = {
        "prompts": _prompts_stage,
        "images": _images_stage,
        "train": train_stage,
        "joint": joint_stage,
        "styleinject": _styleinject_stage,
        "merge": _merge_stage,
        "evaluate": _evaluate_stage,
        "compare": _compare_stage,
    }
    reports = []
    for name in STAGES:
        if name in stages:
            report = runners[name](config, progress)
            for line in report.lines:
                log.debug("%s: %s", name, line)  # the caller prints report.lines
            reports.append(report)
    return RunResult(run_dir, reports)


def _prompts_stage(config: RunConfig, progress) -> StageReport:
    from ..prompts.generation import generate_prompts

    report = StageReport("prompts")
    for skill in config.skills:
        result = generate_prompts(
            skill, config.llm, config.run_dir, config.prompts, on_progress=progress(f"prompts/{skill.name}")
        )
        report.did_work |= result.added > 0
        report.lines.append(result.summary())
        report.artifacts += [("skill", config.run_dir / "skills" / f"{skill.name}.json"), ("prompts", result.path)]
    return report


def _images_stage(config: RunConfig, progress) -> StageReport:
    from ..datasets.contact_sheet import dataset_contact_sheet, default_sheet_path, save_sheet
    from ..datasets.rendering import build_dataset, pending_indices
    from ..shapes.renderer_pipeline import load_data_pipeline

    report = StageReport("images")
    model = resolve_model(config, config.image_model)
    report.artifacts.append(("model", Path(model) if Path(model).exists() else model))
    pipe = None
    for skill in config.skills:
        name = skill.name
        if pending_indices(config.run_dir, name) and pipe is None:  # load the model only when there is work
            images = config.images
            # 'renderer': the world's renderer writes the data (weak-to-strong)
            settings = {"device": images.device, "dtype": images.dtype, "config_folder": images.config_folder}
            pipe = load_data_pipeline(model, **settings)
        result = build_dataset(
            name,
            pipe or model,
            config.run_dir,
            config=config.images,
            on_progress=progress(f"images/{name}"),
            model_name=config.image_model if config.image_model in NAMED_SOURCES else model,
        )
        sheet = default_sheet_path(result.folder)
        if result.rendered or not sheet.is_file():
            save_sheet(dataset_contact_sheet(result.folder), sheet)
        report.did_work |= result.rendered > 0
        report.lines.append(result.summary())
        report.artifacts += [("dataset", result.folder), ("preview", sheet)]
        if config.filter_threshold:
            from .filter_step import filter_skill_dataset

            kept = filter_skill_dataset(config, skill, progress(f"filter/{name}"))
            report.lines.append(kept.summary())
            report.artifacts.append(("filtered", kept.folder))
    return report


def _evaluate_stage(config: RunConfig, progress) -> StageReport:
    from .evaluate_stage import evaluate_stage

    report = StageReport("evaluate")
    evaluate_stage(config, progress, report)
    return report


def _styleinject_stage(config: RunConfig, progress) -> StageReport:
    from .styleinject_stage import styleinject_stage

    report = StageReport("styleinject")
    styleinject_stage(config, progress, report)
    return report


def skill_expert_paths(config: RunConfig) -> dict[str, Path]:
    return {s.name: config.run_dir / "experts" / f"{s.name}.safetensors" for s in config.skills}


def merged_path(config: RunConfig) -> Path:
    return config.run_dir / "experts" / f"{MERGED_NAME}.safetensors"


def _merge_stage(config: RunConfig, progress) -> StageReport:
    from ..merging.merge_files import default_report_path, merge_expert_files

    report = StageReport("merge")
    if config.merge is None:
        report.lines.append("disabled ([merge] enabled = false)")
        return report
    inputs = list(skill_expert_paths(config).values())
    output = merged_path(config)
    report_path = default_report_path(output)
    if is_up_to_date([output, report_path], inputs):
        report.lines.append(f"up to date: {output}")
    else:
        merged = merge_expert_files(  # the run owns this file: a changed [merge] recipe replaces it
            inputs, config.merge, output, overwrite=True, on_progress=progress(f"merge/{config.merge.method}")
        )
        report.did_work = True
        report.lines += merged.summary().splitlines()
    report.artifacts += [("merged", output), ("report", report_path)]
    return report


def comparison_columns(config: RunConfig) -> dict[str, Path | None]:
    """base, then each skill's expert, then the merged expert (if merging is on)."""
    columns: dict[str, Path | None] = {"base": None, **skill_expert_paths(config)}
    if config.merge is not None:
        columns[MERGED_NAME] = merged_path(config)
    return columns


def comparison_path(run_dir: Path, skill_name: str) -> Path:
    return Path(run_dir) / "comparison" / f"{skill_name}.png"


def _compare_stage(config: RunConfig, progress) -> StageReport:
    from ..evaluation.comparison import compare_skills, save_grid
    from ..prompts.generation import load_prompts
    from ..prompts.held_out import held_out_path, held_out_prompts

    report = StageReport("compare")
    if config.compare is None:
        report.lines.append("disabled ([compare] enabled = false)")
        return report
    stage = config.compare
    columns = comparison_columns(config)
    prompts: dict[str, list[str]] = {}
    for skill in config.skills:
        given = stage.held_out.get(skill.name)
        prompts[skill.name] = (
            list(given)[: stage.prompts]
            if given
            else held_out_prompts(
                config.run_dir,
                skill,
                load_prompts(config.run_dir, skill.name),
                stage.prompts,
                llm=config.llm,
                seed=config.prompts.seed,
                threshold=config.prompts.threshold,
            )
        )
    inputs = [p for p in columns.values() if p is not None]
    todo = {
        name: texts
        for name, texts in prompts.items()
        if not is_up_to_date([comparison_path(config.run_dir, name)], [*inputs, held_out_path(config.run_dir, name)])
    }
    if todo:
        from ..models.pipelines import load_pipeline

        pipe = load_pipeline(resolve_model(config, config.train_model), device=config.images.device)
        grids = compare_skills(pipe, columns, todo, stage.render, on_progress=progress("compare"))
        for name, grid in grids.items():
            save_grid(grid, comparison_path(config.run_dir, name))
            report.lines.append(
                f"{name}: {len(todo[name])} prompt(s) x {len(columns)} column(s) -> "
                f"{comparison_path(config.run_dir, name)}"
            )
        report.did_work = True
    for skill in config.skills:
        if skill.name not in todo:
            report.lines.append(f"up to date: {comparison_path(config.run_dir, skill.name)}")
        report.artifacts.append(("grid", comparison_path(config.run_dir, skill.name)))
        if skill.name not in stage.held_out:
            report.artifacts.append(("held-out", held_out_path(config.run_dir, skill.name)))
    return report
