"""Filtered self-generated data (beyond SELMA, in the spirit of DreamSync): keep only the images of a dataset whose
DSG score, by an answerer of the evaluation stage, is at or above a threshold.

    result = filter_dataset("runs/r/datasets/counting", "runs/r/filtered/counting", answerer, threshold=1.0,
                            questions=QuestionWriter(llm, "runs/r/filtered/questions.jsonl"), skill=skill,
                            scenes={prompt: scene, ...})

The kept folder is a dataset folder like any other (the kept images copied with their metadata lines, indices
unchanged), so training, the nodes and `selma train` read it as they read the unfiltered one. Every image's score
and its questions' answers go to `scores.jsonl` in the kept folder. Resumable: a rerun scores only the images it
has no score for, and the answers are cached by (answerer, image bytes, question) like the evaluation's.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..atomic_files import append_jsonl, read_jsonl
from ..datasets.files import METADATA, read_dataset
from .answerer import AnswererConfig
from .answerer_factory import make_answerer
from .scores import dsg_score

SCORES = "scores.jsonl"
ProgressFn = Callable[[int, int], None]


@dataclass
class FilterResult:
    folder: Path
    kept: int
    total: int
    threshold: float
    mean_score: float

    def summary(self) -> str:
        share = self.kept / self.total if self.total else 0.0
        return (
            f"{self.folder}: kept {self.kept}/{self.total} images ({share:.0%}) with DSG >= {self.threshold:g} "
            f"(mean DSG of all {self.mean_score:.3f})"
        )


def check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 < threshold <= 1.0:
        raise ValueError(f"filter threshold={threshold!r} must be a DSG score in (0, 1], e.g. 1.0 (every question)")
    return float(threshold)


def filter_dataset(
    source: str | Path,
    dest: str | Path,
    answerer: AnswererConfig,
    threshold: float,
    *,
    questions,
    skill,
    scenes: Mapping[str, dict] | None = None,
    on_progress: ProgressFn | None = None,
) -> FilterResult:
    """Score every image of `source` with DSG (its prompt's questions from `questions`, a QuestionWriter; a
    prompt's recorded scene from `scenes` gives exact ones) and write those scoring >= `threshold` to `dest`."""
    from PIL import Image

    threshold = check_threshold(threshold)
    source, dest = Path(source), Path(dest)
    if source.resolve() == dest.resolve():
        raise ValueError(f"the filtered dataset must go to another folder than its source {source}")
    records = read_dataset(source)
    dest.mkdir(parents=True, exist_ok=True)
    scored = {r["file_name"]: r for r in read_jsonl(dest / SCORES)}
    todo = [r for r in records if r.file_name not in scored]
    scenes = scenes or {}
    asked = questions.questions(skill, [{"prompt": r.text, "scene": scenes.get(r.text)} for r in todo])
    model = make_answerer(answerer) if todo else None
    try:
        for done, record in enumerate(todo, 1):
            image_questions = asked[record.text]
            with Image.open(source / record.file_name) as opened:
                image = opened.convert("RGB")
            answers = model.answer([image] * len(image_questions), image_questions)
            p_yes = {q.id: a.p_yes for q, a in zip(image_questions, answers, strict=True)}
            row = {"file_name": record.file_name, "text": record.text, "dsg": dsg_score(image_questions, p_yes),
                   "answers": {str(q.id): a.p_yes for q, a in zip(image_questions, answers, strict=True)}}  # fmt: skip
            append_jsonl(dest / SCORES, [row])
            scored[record.file_name] = row
            if on_progress is not None:
                on_progress(len(records) - len(todo) + done, len(records))
    finally:
        if model is not None:
            model.close()
    kept = [r for r in records if scored[r.file_name]["dsg"] >= threshold]
    _write_kept(source, dest, kept)
    mean = sum(scored[r.file_name]["dsg"] for r in records) / len(records)
    return FilterResult(dest, len(kept), len(records), threshold, mean)


def _write_kept(source: Path, dest: Path, kept) -> None:
    """The kept images and their metadata lines (metadata last, whole, so a record always points at an image)."""
    for record in kept:
        if not (dest / record.file_name).is_file():
            tmp = dest / f".{record.file_name}.tmp"
            shutil.copyfile(source / record.file_name, tmp)
            tmp.replace(dest / record.file_name)
    wanted = {r.file_name for r in kept}
    for stale in dest.iterdir():  # images no longer kept (a rerun with a higher threshold)
        if stale.is_file() and stale.name not in wanted and stale.name not in (SCORES, METADATA):
            stale.unlink()
    lines = "".join(json.dumps({**r.to_json(), "filtered_from": str(source)}, ensure_ascii=False) + "\n" for r in kept)
    from ..atomic_files import write_text_atomic

    write_text_atomic(dest / METADATA, lines)
