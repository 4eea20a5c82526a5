"""The counting grammar (CountBench-style): one, two or three of a thing, words from `vocab/counting.json`."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..template_vocab import vocab
from .english import cap, maybe, plural

_ONE_TWO_THREE = ("one", "two", "three")


def _counted(rng: random.Random, count: str, noun: str, adjectives: Sequence[str]) -> str:
    adj = rng.choice(adjectives) + " " if rng.random() < 0.8 else ""
    return f"{count} {adj}{noun if count == 'one' else plural(noun)}"


def counting(rng: random.Random, word_limit: int) -> str:
    """CountBench-style: one, two or three of a thing (or two such groups), with a scene around them."""
    v = vocab()
    categories = v.counting.categories
    cat = categories[rng.choice(list(categories))]
    count = rng.choice(_ONE_TWO_THREE)
    noun, noun2 = rng.sample(cat.nouns, 2)
    np = _counted(rng, count, noun, cat.adjectives)
    place, verb = rng.choice(cat.places), "is" if count == "one" else "are"
    action = rng.choice(cat.actions) + " " if cat.actions else ""
    extra = maybe(rng, 0.5, ", " + rng.choice(v.photos.light_extras))
    pattern = rng.randrange(7)
    if pattern == 0:
        return f"{cap(np)} {action}{place}{extra}."
    if pattern == 1:
        return f"{rng.choice(v.photos.openers)} {np} {action}{place}{extra}."
    if pattern == 2:
        return f"There {verb} {np} {action}{place}{extra}."
    if pattern == 3:
        if action:
            return f"{cap(place)}, {np} {verb} {action.strip()}{extra}."
        return f"{cap(place)}, there {verb} {np}{extra}."
    if pattern == 4:
        np2 = _counted(rng, rng.choice(_ONE_TWO_THREE), noun2, cat.adjectives)
        return f"{cap(np)} and {np2} {place}{extra}."
    if pattern == 5:
        return f"Exactly {np} {action}{place}{extra}."
    np2 = _counted(rng, rng.choice(_ONE_TWO_THREE), noun2, cat.adjectives)
    return f"{cap(np)} {action}{place}, with {np2} nearby."
