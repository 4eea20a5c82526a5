"""What SELMA Filter Dataset does: the core's DSG filter (`filter_run_skill`) over a node's dataset, with the
evaluator's answerer and LLM."""

from __future__ import annotations

from pathlib import Path

from ...selma.datasets.files import filtered_dataset_dir, read_dataset
from ...selma.evaluation.dataset_filter import FilterResult
from ...selma.evaluation.questions import PromptSkill
from ...selma.pipeline.filter_step import filter_run_skill
from .evaluate import scenes_for


def filter_node_dataset(dataset, evaluator, threshold: float, on_progress=None) -> FilterResult:
    """Filter `dataset.folder` (RUN/datasets/<skill>/, or any dataset folder) into RUN/filtered/<skill>/."""
    if evaluator.answerer is None:
        raise ValueError("the evaluator has no answerer: put dsg in its metrics and pick an answerer")
    folder = Path(dataset.folder)
    run_dir = folder.parents[1] if folder.parent.name == "datasets" else folder.parent
    scenes = scenes_for(run_dir, [record.text for record in read_dataset(folder)])
    return filter_run_skill(run_dir, PromptSkill(dataset.skill), evaluator.answerer, threshold, evaluator.llm,
                            filtered_dataset_dir(run_dir, folder.name), on_progress, source=folder,
                            scenes=scenes)  # fmt: skip
