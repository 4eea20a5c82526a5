"""`evaluation/answers.jsonl`: every answer ever given, keyed by (image hash, question, answerer).

A rerun, or a new variant next to old ones, asks the answerer only what is not in the file yet. Records are
appended whole (a killed run leaves at most a torn last line, which is dropped), so nothing is half-written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic_files import append_jsonl, read_jsonl
from .answerer import Answer, Answerer

if TYPE_CHECKING:
    from PIL.Image import Image

    from .scores import Question

Key = tuple[str, str, str]  # (image sha256, question text, answerer label)


def image_hash(image: Image) -> str:
    """sha256 of the decoded RGB pixels and size: the same picture hashes the same whatever file it came from."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


class AnswerCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._answers: dict[Key, Answer] = {}
        for record in read_jsonl(self.path):
            key = (record["image_sha256"], record["question"], record["answerer"])
            self._answers[key] = Answer(float(record["p_yes"]), str(record["answer"]))
        self.calls = 0  # answerer calls made through this cache (a fully cached rerun makes none)

    def __len__(self) -> int:
        return len(self._answers)

    def ask(
        self,
        answerer: Answerer,
        items: Sequence[tuple[Image, str, Question, dict]],
        *,
        batch_size: int = 8,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> list[Answer]:
        """Answers for (image, image hash, question, record extras) items; only the missing ones reach the
        answerer, `batch_size` pairs per call, each batch appended to the file as soon as it is answered."""
        keys = [(digest, question.text, answerer.label) for _, digest, question, _ in items]
        todo = sorted({k: i for i, k in enumerate(keys) if k not in self._answers}.values())
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            answers = answerer.answer([items[i][0] for i in batch], [items[i][2] for i in batch])
            self.calls += 1
            if len(answers) != len(batch):
                raise RuntimeError(f"{answerer.label} returned {len(answers)} answers for {len(batch)} questions")
            records = []
            for i, answer in zip(batch, answers, strict=True):
                self._answers[keys[i]] = answer
                _, digest, question, extras = items[i]
                records.append({**extras, "image_sha256": digest, "question": question.text,
                                "answerer": answerer.label, "p_yes": answer.p_yes, "answer": answer.text})  # fmt: skip
            append_jsonl(self.path, records)
            if on_progress:
                on_progress(min(start + batch_size, len(todo)), len(todo))
        return [self._answers[k] for k in keys]

