"""The counting grammar (CountBench-style): one, two or three of a thing, words from `vocab/counting.json`."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..template_vocab import vocab
from .english import cap, maybe, plural
from .scene import Scene

_ONE_TWO_THREE = ("one", "two", "three")


def _counted(rng: random.Random, count: str, noun: str, adjectives: Sequence[str]) -> tuple[str, str]:
    """('two fluffy dogs', 'fluffy'): the counted noun phrase and its adjective ('' when it has none)."""
    adj = rng.choice(adjectives) + " " if rng.random() < 0.8 else ""
    return f"{count} {adj}{noun if count == 'one' else plural(noun)}", adj.strip()


def counting(rng: random.Random, word_limit: int) -> tuple[str, dict]:
    """CountBench-style: one, two or three of a thing (or two such groups), with a scene around them."""
    v = vocab()
    categories = v.counting.categories
    cat = categories[rng.choice(list(categories))]
    count = rng.choice(_ONE_TWO_THREE)
    noun, noun2 = rng.sample(cat.nouns, 2)
    np, adj = _counted(rng, count, noun, cat.adjectives)
    place, verb = rng.choice(cat.places), "is" if count == "one" else "are"
    action = rng.choice(cat.actions) + " " if cat.actions else ""
    extra = maybe(rng, 0.5, ", " + rng.choice(v.photos.light_extras))
    pattern = rng.randrange(7)
    scene = Scene()
    first = scene.entity(noun, adj, count=_ONE_TWO_THREE.index(count) + 1, count_word=count)
    if pattern != 4:
        scene.attribute(first, action.strip())
    scene.place(place, first)

    def second() -> str:
        count2 = rng.choice(_ONE_TWO_THREE)
        np2, adj2 = _counted(rng, count2, noun2, cat.adjectives)
        other = scene.entity(noun2, adj2, count=_ONE_TWO_THREE.index(count2) + 1, count_word=count2)
        if pattern == 4:  # "two dogs and three cats on a blanket": both are on it
            scene.place(place, other)
        return np2

    if pattern == 0:
        text = f"{cap(np)} {action}{place}{extra}."
    elif pattern == 1:
        text = f"{rng.choice(v.photos.openers)} {np} {action}{place}{extra}."
    elif pattern == 2:
        text = f"There {verb} {np} {action}{place}{extra}."
    elif pattern == 3:
        if action:
            text = f"{cap(place)}, {np} {verb} {action.strip()}{extra}."
        else:
            text = f"{cap(place)}, there {verb} {np}{extra}."
    elif pattern == 4:
        text = f"{cap(np)} and {second()} {place}{extra}."
    elif pattern == 5:
        text = f"Exactly {np} {action}{place}{extra}."
    else:
        text = f"{cap(np)} {action}{place}, with {second()} nearby."
    return text, scene.to_json()
