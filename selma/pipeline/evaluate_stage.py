"""The evaluation stage of a run: held-out prompts of each skill rendered by every variant (base, each skill
expert, merged, joint), scored with DSG, VQAScore and CLIPScore, summed up in a scoreboard.

Writes RUN_DIR/evaluation/: images/<skill>/<variant>/<row>.png, questions/<skill>.jsonl, answers.jsonl (every
answer, the cache), scores.jsonl (one score per image and metric) and scoreboard.{json,csv,md,png}. A rerun
renders only missing images and asks the answerers only new questions; with nothing new it loads no model.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic_files import write_text_atomic
from .evaluate_config import JOINT_NAME, TINY, register_checker_of
from .run_config import MERGED_NAME
from .stage_state import resolve_model, tiny_answerer

if TYPE_CHECKING:
    from .report import StageReport
    from .run_config import RunConfig


def evaluation_variants(config: RunConfig) -> dict[str, Path | None]:
    """base, each skill's expert, merged (if merging is on), joint (if [joint] is on)."""
    experts = config.run_dir / "experts"
    variants: dict[str, Path | None] = {"base": None}
    variants.update({s.name: experts / f"{s.name}.safetensors" for s in config.skills})
    if config.merge is not None:
        variants[MERGED_NAME] = experts / f"{MERGED_NAME}.safetensors"
    if config.joint is not None:
        variants[JOINT_NAME] = experts / f"{JOINT_NAME}.safetensors"
    return variants


def _records(config: RunConfig, count: int) -> dict[str, list[dict]]:
    from ..prompts.generation import load_prompts
    from ..prompts.held_out import held_out_records

    given = config.compare.held_out if config.compare else {}
    records = {}
    for skill in config.skills:
        if skill.name in given:
            records[skill.name] = [{"prompt": p} for p in given[skill.name][:count]]
            continue
        records[skill.name] = held_out_records(
            config.run_dir, skill, load_prompts(config.run_dir, skill.name), count,
            llm=config.llm, seed=config.prompts.seed, threshold=config.prompts.threshold,
        )  # fmt: skip
    return records


def _eval_config(config: RunConfig):
    from ..evaluation.scoring import EvalConfig

    stage = config.evaluate
    answerer = stage.answerer
    register_checker_of(answerer)
    if answerer is not None and answerer.model == TINY:
        answerer = dataclasses.replace(answerer, model=str(tiny_answerer(config.run_dir, answerer.backend)))
    clip = str(tiny_answerer(config.run_dir, "clip")) if stage.clip_model == TINY else stage.clip_model
    return EvalConfig(metrics=stage.metrics, answerer=answerer, clip_model=clip, llm=stage.llm or config.llm,
                      threshold=stage.threshold, device=config.images.device)  # fmt: skip


def evaluate_stage(config: RunConfig, progress, report: StageReport) -> None:
    from ..evaluation.scoreboard import build_scoreboard, scoreboard_markdown, scoreboard_paths, write_scoreboard
    from ..evaluation.scoring import score_images
    from ..evaluation.variant_images import plan_images, render_variant_images

    stage = config.evaluate
    if stage is None:
        report.lines.append("disabled ([evaluate] enabled = false)")
        return
    eval_dir = config.run_dir / "evaluation"
    variants = evaluation_variants(config)
    records = _records(config, stage.prompts)
    images, todo = plan_images(eval_dir, variants, records, stage.render)
    if todo:
        from ..models.pipelines import load_pipeline

        pipe = load_pipeline(resolve_model(config, config.train_model), device=config.images.device)
        rendered = render_variant_images(pipe, variants, todo, stage.render, progress("evaluate/render"))
        report.lines.append(f"rendered {rendered} image(s) ({len(images) - rendered} already on disk)")
        report.did_work = True
    scores, cache = score_images(
        images, _eval_config(config), eval_dir, {s.name: s for s in config.skills},
        on_progress=lambda what, done, total: progress(f"evaluate/{what}")(done, total),
    )  # fmt: skip
    report.did_work |= cache.calls > 0
    report.lines.append(f"{cache.calls} answerer call(s); {len(cache)} answer(s) in {cache.path}")
    rows = build_scoreboard(scores, seed=stage.render.seed)
    title = f"{config.run_dir.name}: {len(records)} skill(s) x {len(variants)} variant(s)"
    scores_text = "".join(json.dumps(dataclasses.asdict(s)) + "\n" for s in scores)
    paths = scoreboard_paths(eval_dir)
    old = eval_dir / "scores.jsonl"
    if not (old.is_file() and old.read_text() == scores_text and all(p.is_file() for p in paths.values())):
        write_text_atomic(old, scores_text)  # a rerun with the same scores rewrites nothing
        paths = write_scoreboard(rows, eval_dir, title)
        report.did_work = True
    if any(m == TINY for m in (stage.clip_model, stage.answerer.model if stage.answerer else "")):
        report.lines.append("note: tiny random answerers — these numbers test the plumbing, not faithfulness")
    report.lines += scoreboard_markdown(rows, title).splitlines()[4:]
    report.artifacts += [(f"scoreboard.{ext}", path) for ext, path in paths.items()]
    report.artifacts.append(("answers", cache.path))
