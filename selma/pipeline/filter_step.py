"""The DSG filter of a run's datasets (`[images] filter_threshold`): after a skill's images are rendered, its
images scoring at least the threshold are copied to filtered/<skill>/, which the experts then train on.

The answerer is [evaluate]'s (on the shapes model: the world's exact checker); the questions come from each
prompt's recorded scene (the template LLM) or from [evaluate]'s LLM, cached in filtered/questions.jsonl.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .evaluate_config import SHAPES_CHECKER, register_checker_of
from .run_config import SHAPES_MODEL
from .stage_state import training_dataset

if TYPE_CHECKING:
    from ..evaluation.dataset_filter import FilterResult
    from .run_config import RunConfig


def filter_answerer(config: RunConfig):
    from ..evaluation.answerer import AnswererConfig

    if config.evaluate is not None and config.evaluate.answerer is not None:
        answerer = config.evaluate.answerer
    elif config.train_model == SHAPES_MODEL:
        answerer = AnswererConfig(**SHAPES_CHECKER)
    else:
        raise ValueError(
            "[images] filter_threshold needs an answerer: add [evaluate] answerer = {backend = ..., model = ...}"
        )
    register_checker_of(answerer)
    return answerer


def filter_skill_dataset(config: RunConfig, skill, on_progress=None) -> FilterResult:
    llm = config.evaluate.llm if config.evaluate is not None and config.evaluate.llm else config.llm
    return filter_run_skill(config.run_dir, skill, filter_answerer(config), config.filter_threshold, llm,
                            training_dataset(config, skill.name), on_progress=on_progress)  # fmt: skip


def filter_run_skill(run_dir, skill, answerer, threshold: float, llm=None, dest=None, on_progress=None, *,
                     source=None, scenes=None):  # fmt: skip
    """Filter `source` (default RUN_DIR/datasets/<skill>/) into `dest` (default RUN_DIR/filtered/<skill>/): the
    filter of `selma run`, `selma images --filter-threshold` and SELMA Filter Dataset. Questions from the prompts'
    recorded scenes (prompts/<skill>.jsonl, or `scenes`: prompt -> scene), else from `llm` (default: the template
    writer), cached in RUN_DIR/filtered/questions.jsonl."""
    from pathlib import Path

    from ..atomic_files import read_jsonl
    from ..datasets.files import dataset_dir, filtered_dataset_dir
    from ..evaluation.dataset_filter import filter_dataset
    from ..evaluation.questions import QuestionWriter
    from ..llm.base import LLMConfig
    from ..prompts.generation import prompts_path

    run_dir = Path(run_dir)
    register_checker_of(answerer)
    if scenes is None:
        scenes = {r["text"]: r["scene"] for r in read_jsonl(prompts_path(run_dir, skill.name)) if r.get("scene")}
    source = source or dataset_dir(run_dir, skill.name)
    writer = QuestionWriter(llm or LLMConfig(), run_dir / "filtered" / "questions.jsonl")
    try:
        return filter_dataset(source, dest or filtered_dataset_dir(run_dir, skill.name), answerer, threshold,
                              questions=writer, skill=skill, scenes=scenes, on_progress=on_progress)  # fmt: skip
    finally:
        writer.close()
