"""The three faithfulness scores, as plain functions of answers (no model in here).

- DSG (Cho et al. 2024): the mean over a prompt's questions of "answered yes", where a question whose parent
  was answered "no" counts as "no" (if there is no cat, "is the cat black?" cannot be "yes").
- VQAScore (Lin et al. 2024): P("Yes") for one question about the whole prompt, `VQASCORE_QUESTION`.
- CLIPScore (Hessel et al. 2021): 2.5 * max(cos(image, text), 0) over CLIP embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

VQASCORE_QUESTION = 'Does this figure show "{prompt}"? Please answer yes or no.'
CLIPSCORE_WEIGHT = 2.5
CATEGORIES = ("entity", "attribute", "relation", "count", "text", "global")


@dataclass(frozen=True)
class Question:
    """One atomic yes/no question of a prompt's Davidsonian scene graph."""

    id: int
    category: str
    text: str
    parents: tuple[int, ...] = ()
    spec: Mapping = field(default_factory=dict, compare=False)  # what a programmatic checker reads

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"question {self.id}: category {self.category!r} is not one of {CATEGORIES}")
        if not self.text.strip():
            raise ValueError(f"question {self.id} has no text")
        if self.id in self.parents:
            raise ValueError(f"question {self.id} lists itself as its parent")
        object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))

    def to_json(self) -> dict:
        data = {"id": self.id, "category": self.category, "question": self.text, "parents": list(self.parents)}
        return {**data, "spec": dict(self.spec)} if self.spec else data

    @classmethod
    def from_json(cls, data: Mapping) -> Question:
        return cls(int(data["id"]), str(data["category"]), str(data["question"]), tuple(data.get("parents", ())),
                   dict(data.get("spec", {})))  # fmt: skip


def check_graph(questions: Sequence[Question]) -> None:
    """Ids are unique, every parent exists and comes first (so the graph has no cycle)."""
    seen: set[int] = set()
    for q in questions:
        if q.id in seen:
            raise ValueError(f"question id {q.id} appears twice")
        missing = [p for p in q.parents if p not in seen]
        if missing:
            raise ValueError(f"question {q.id} ({q.text!r}) depends on {missing}, which do not come before it")
        seen.add(q.id)


def dsg_score(questions: Sequence[Question], p_yes: Mapping[int, float], threshold: float = 0.5) -> float:
    """DSG score of one image: the share of questions answered yes (P(yes) > threshold), a question counting as
    "no" when any of its ancestors was answered "no"."""
    if not questions:
        raise ValueError("no questions: a prompt needs at least one DSG question to be scored")
    check_graph(questions)
    passed: dict[int, bool] = {}
    for q in questions:
        if q.id not in p_yes:
            raise ValueError(f"question {q.id} ({q.text!r}) has no answer")
        passed[q.id] = p_yes[q.id] > threshold and all(passed[p] for p in q.parents)
    return sum(passed.values()) / len(questions)


def vqascore_question(prompt: str) -> Question:
    return Question(0, "global", VQASCORE_QUESTION.format(prompt=prompt.strip()))


def clip_score(cosine: float) -> float:
    return CLIPSCORE_WEIGHT * max(float(cosine), 0.0)
