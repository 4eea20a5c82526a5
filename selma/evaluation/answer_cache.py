"""`evaluation/answers.jsonl`: every answer ever given, keyed by (image hash, question, answerer).

A rerun, or a new variant next to old ones, asks the answerer only what is not in the file yet. Records are
appended whole under a file lock (a killed run leaves at most a torn last line, which is dropped), so nothing is
half-written, and processes under `accelerate launch` each answer their share into the same file: `fill` with
`shard=(process_index, num_processes)`, wait for every process, `reload`, then `lookup`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

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
        self.reload()
        self.calls = 0  # answerer calls made through this cache (a fully cached rerun makes none)

    def reload(self) -> None:
        """Read the file again (after other processes appended their shares)."""
        for record in read_jsonl(self.path):
            key = (record["image_sha256"], record["question"], record["answerer"])
            self._answers[key] = Answer(float(record["p_yes"]), str(record["answer"]))

    def __len__(self) -> int:
        return len(self._answers)

    def ask(self, answerer: Answerer, items: Sequence[tuple[Image, str, Question, dict]], **kwargs) -> list[Answer]:
        """`fill`, then `lookup`: answers for (image, image hash, question, record extras) items."""
        self.fill(answerer, items, **kwargs)
        return self.lookup(answerer.label, items)

    def lookup(self, label: str, items: Sequence[tuple[Image, str, Question, dict]]) -> list[Answer]:
        missing = [q.text for _, digest, q, _ in items if (digest, q.text, label) not in self._answers]
        if missing:
            raise RuntimeError(
                f"{len(missing)} question(s) for {label} have no answer in {self.path}, e.g. {missing[0]!r}"
            )
        return [self._answers[digest, q.text, label] for _, digest, q, _ in items]

    @property
    def _lock_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.lock")

    def remove_lock_file(self) -> None:
        """Delete the append lock's file once no process answers into this file any more: a finished evaluation
        folder holds only its documented files."""
        self._lock_path.unlink(missing_ok=True)

    def fill(
        self,
        answerer: Answerer,
        items: Sequence[tuple[Image, str, Question, dict]],
        *,
        batch_size: int = 8,
        shard: tuple[int, int] = (0, 1),
        on_progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Ask the answerer what the file does not hold yet (this process's `shard` of it), `batch_size` pairs per
        call, each batch appended as soon as it is answered. Returns how many pairs were asked."""
        keys = [(digest, question.text, answerer.label) for _, digest, question, _ in items]
        first = {}  # key -> its first item; the shares split the distinct keys, whatever is cached yet, so every
        for i, key in enumerate(keys):  # process agrees on who asks what even while another one is appending
            first.setdefault(key, i)
        index, count = shard
        todo = [i for j, (key, i) in enumerate(first.items()) if j % count == index and key not in self._answers]
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
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self._lock_path)):
                append_jsonl(self.path, records)
            if on_progress:
                on_progress(min(start + batch_size, len(todo)), len(todo))
        return len(todo)
