"""The offline prompt writer, used when no LLM is configured: `TemplateBackend` answers a request with a
numbered list drawn from the skill's grammar.

`GRAMMARS` names the grammars (one module each in `grammars/`, words in `vocab/*.json`); each returns a prompt
and the scene it was built from (`grammars/scene.py`). `generate_scenes` draws distinct prompts within the word
limit with their scenes, deterministic per seed; `generate_prompts` is the same without the scenes.
`TemplateBackend.scenes` keeps the scene of every prompt it wrote, so the prompt stage can save it and the
evaluation stage derive exact DSG questions; it writes no questions itself.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence

from ..errors import LLMError
from .base import LLMConfig, LLMRequest
from .grammars.art import art
from .grammars.attribute import attribute
from .grammars.counting import counting
from .grammars.everyday import everyday
from .grammars.paragraph import paragraph
from .grammars.shapes import shapes_colour, shapes_counting, shapes_spatial
from .grammars.spatial import spatial
from .grammars.text import text
from .grammars.whoops import whoops

_TRIES_PER_PROMPT = 200

Grammar = Callable[[random.Random, int], tuple[str, dict]]
GRAMMARS: dict[str, Grammar] = {
    "counting": counting,
    "spatial": spatial,
    "text": text,
    "attribute": attribute,
    "everyday": everyday,
    "paragraph": paragraph,
    "art": art,
    "whoops": whoops,
    "shapes_counting": shapes_counting,
    "shapes_spatial": shapes_spatial,
    "shapes_colour": shapes_colour,
}


def generate_scenes(
    grammar: str, num_prompts: int, word_limit: int, seed: int, avoid: Sequence[str] = ()
) -> list[tuple[str, dict]]:
    """`num_prompts` distinct (prompt, scene) pairs of one grammar, each prompt within `word_limit` words; same
    seed, same list."""
    if grammar not in GRAMMARS:
        raise ValueError(f"template grammar {grammar!r} is not known; use one of {', '.join(GRAMMARS)}")
    write, rng = GRAMMARS[grammar], random.Random(seed)
    written: list[tuple[str, dict]] = []
    seen = set(avoid)
    for _ in range(max(num_prompts, 1) * _TRIES_PER_PROMPT):
        if len(written) >= num_prompts:
            break
        prompt, scene = write(rng, word_limit)
        if len(prompt.split()) <= word_limit and prompt not in seen:
            seen.add(prompt)
            written.append((prompt, scene))
    if len(written) < num_prompts:
        raise ValueError(
            f"the {grammar!r} template grammar wrote only {len(written)} of {num_prompts} prompts within "
            f"word_limit={word_limit}; raise the skill's word_limit or use an LLM backend"
        )
    return written


def generate_prompts(
    grammar: str, num_prompts: int, word_limit: int, seed: int, avoid: Sequence[str] = ()
) -> list[str]:
    """`num_prompts` distinct prompts of one grammar, each within `word_limit` words; same seed, same list."""
    return [prompt for prompt, _ in generate_scenes(grammar, num_prompts, word_limit, seed, avoid)]


class TemplateBackend:
    """Offline, deterministic LLM stand-in: answers a request with a numbered list from the skill's grammar, and
    keeps each prompt's scene in `scenes` (prompt text -> scene)."""

    def __init__(self, config: LLMConfig):
        self.config = config
        self.label = config.label
        self.scenes: dict[str, dict] = {}
        self._lock = threading.Lock()  # the prompt stage calls `complete` from several threads

    def complete(self, request: LLMRequest) -> str:
        if request.task == "questions":
            raise LLMError(
                "the offline template backend writes DSG questions only for prompts it generated itself (from the "
                "scene it recorded); to ask questions about any other prompt, use an LLM backend "
                "(backend = 'openai' or 'transformers')"
            )
        written = generate_scenes(
            request.skill.grammar, request.num_prompts, request.skill.word_limit, request.seed, request.examples
        )
        with self._lock:
            for prompt, scene in written:
                self.scenes.setdefault(prompt, scene)
        return "\n".join(f"{i}. {p}" for i, (p, _) in enumerate(written, 1))

    def close(self) -> None:
        pass
