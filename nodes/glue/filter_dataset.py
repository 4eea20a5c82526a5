"""What SELMA Filter Dataset does: the core's DSG filter over a node's dataset, with the evaluator's answerer."""

from __future__ import annotations

from pathlib import Path

from ...selma.datasets.files import read_dataset
from ...selma.evaluation.dataset_filter import FilterResult, filter_dataset
from ...selma.evaluation.questions import PromptSkill, QuestionWriter
from ...selma.pipeline.evaluate_config import register_checker_of
from ...selma.shapes.parse import prompt_scene
from .evaluate import known_scenes


def filter_node_dataset(dataset, evaluator, threshold: float, on_progress=None) -> FilterResult:
    """Filter `dataset.folder` (RUN/datasets/<skill>/) into RUN/filtered/<skill>/."""
    if evaluator.answerer is None:
        raise ValueError("the evaluator has no answerer: put dsg in its metrics and pick an answerer")
    folder = Path(dataset.folder)
    run_dir = folder.parents[1] if folder.parent.name == "datasets" else folder.parent
    register_checker_of(evaluator.answerer)
    scenes = known_scenes(run_dir)
    for record in read_dataset(folder):
        if record.text not in scenes and (scene := prompt_scene(record.text)):
            scenes[record.text] = scene
    writer = QuestionWriter(evaluator.llm, run_dir / "filtered" / "questions.jsonl")
    try:
        return filter_dataset(folder, run_dir / "filtered" / folder.name, evaluator.answerer, threshold,
                              questions=writer, skill=PromptSkill(dataset.skill), scenes=scenes,
                              on_progress=on_progress)  # fmt: skip
    finally:
        writer.close()
