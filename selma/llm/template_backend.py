"""The offline prompt writer, used when no LLM is configured: `TemplateBackend` answers a request with a
numbered list drawn from the skill's grammar.

`GRAMMARS` names the grammars (one module each in `grammars/`, words in `vocab/*.json`);
`generate_prompts` draws distinct prompts within the word limit, deterministic per seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from .base import LLMConfig, LLMRequest
from .grammars.art import art
from .grammars.attribute import attribute
from .grammars.counting import counting
from .grammars.everyday import everyday
from .grammars.paragraph import paragraph
from .grammars.spatial import spatial
from .grammars.text import text
from .grammars.whoops import whoops

_TRIES_PER_PROMPT = 200

GRAMMARS: dict[str, Callable[[random.Random, int], str]] = {
    "counting": counting,
    "spatial": spatial,
    "text": text,
    "attribute": attribute,
    "everyday": everyday,
    "paragraph": paragraph,
    "art": art,
    "whoops": whoops,
}


def generate_prompts(
    grammar: str, num_prompts: int, word_limit: int, seed: int, avoid: Sequence[str] = ()
) -> list[str]:
    """`num_prompts` distinct prompts of one grammar, each within `word_limit` words; same seed, same list."""
    if grammar not in GRAMMARS:
        raise ValueError(f"template grammar {grammar!r} is not known; use one of {', '.join(GRAMMARS)}")
    write, rng = GRAMMARS[grammar], random.Random(seed)
    prompts: list[str] = []
    seen = set(avoid)
    for _ in range(max(num_prompts, 1) * _TRIES_PER_PROMPT):
        if len(prompts) >= num_prompts:
            break
        prompt = write(rng, word_limit)
        if len(prompt.split()) <= word_limit and prompt not in seen:
            seen.add(prompt)
            prompts.append(prompt)
    if len(prompts) < num_prompts:
        raise ValueError(
            f"the {grammar!r} template grammar wrote only {len(prompts)} of {num_prompts} prompts within "
            f"word_limit={word_limit}; raise the skill's word_limit or use an LLM backend"
        )
    return prompts


class TemplateBackend:
    """Offline, deterministic LLM stand-in: answers a request with a numbered list from the skill's grammar."""

    def __init__(self, config: LLMConfig):
        self.config = config
        self.label = config.label

    def complete(self, request: LLMRequest) -> str:
        prompts = generate_prompts(
            request.skill.grammar, request.num_prompts, request.skill.word_limit, request.seed, request.examples
        )
        return "\n".join(f"{i}. {p}" for i, p in enumerate(prompts, 1))

    def close(self) -> None:
        pass
