"""The whoops grammar: scenes that break common sense on purpose (wrong habitat, wrong scale, wrong era,
wrong physics...); words from `vocab/whoops.json`."""

from __future__ import annotations

import random

from ..template_vocab import vocab
from .english import cap, maybe, with_article


def _moody(rng: random.Random, creature: str) -> str:
    """'a penguin' -> 'a sunburned penguin' half of the time."""
    if rng.random() < 0.5:
        return creature
    return with_article(f"{rng.choice(vocab().whoops.moods)} {creature.split(' ', 1)[1]}")


def _wrong_habitat(rng: random.Random) -> str:
    w = vocab().whoops
    creature, home = rng.choice(tuple(w.creatures.items()))
    place = rng.choice(w.places[rng.choice(w.clashes[home])])
    return f"{_moody(rng, creature)} {rng.choice(w.habits)} {place}"


def _animal_at_work(rng: random.Random) -> str:
    w = vocab().whoops
    job, places = rng.choice(tuple(w.jobs.items()))
    attire = maybe(rng, 0.6, " " + rng.choice(w.attire))
    return f"{_moody(rng, rng.choice(w.workers))}{attire} {job} {rng.choice(places)}"


def _wrong_physics(rng: random.Random) -> str:
    w = vocab().whoops
    thing, state = rng.choice(((w.hot_things, w.underwater), (w.cold_things, w.heat), (w.heavy_things, w.floating)))
    return f"{rng.choice(thing)} {rng.choice(state)}"


def _wrong_scale(rng: random.Random) -> str:
    w = vocab().whoops
    if rng.random() < 0.5:
        return f"{rng.choice(w.tiny)} {rng.choice(w.tiny_spots)}"
    return f"{rng.choice(w.giant)} {rng.choice(w.giant_spots)}"


def _wrong_material(rng: random.Random) -> str:
    w = vocab().whoops
    return f"{rng.choice(w.objects)} {rng.choice(w.materials)} {rng.choice(w.settings)}"


def _wrong_era(rng: random.Random) -> str:
    w = vocab().whoops
    person, places = rng.choice(tuple(w.eras.items()))
    return f"{person} {rng.choice(w.gadgets)} {rng.choice(places)}"


def _role_reversal(rng: random.Random) -> str:
    w = vocab().whoops
    prey, predator = rng.choice(tuple(w.prey.items()))
    act = rng.choice(w.reversals).format(p=predator)
    return f"{prey} {act} {rng.choice(w.reversal_places)}"


def _wrong_tool(rng: random.Random) -> str:
    w = vocab().whoops
    person, pos = rng.choice(tuple(w.people.items()))
    task = rng.choice(w.tasks).format(pos=pos)
    return f"{_moody(rng, person)} {task} with {rng.choice(w.wrong_tools)}"


# Families are drawn roughly in proportion to how many distinct scenes each can write, so the small
# ones (a few dozen physics combinations) do not repeat themselves.
_FAMILIES = (
    (_wrong_habitat, 6), (_animal_at_work, 5), (_wrong_physics, 2), (_wrong_scale, 2),
    (_wrong_material, 4), (_wrong_era, 2), (_role_reversal, 2), (_wrong_tool, 4),
)  # fmt: skip


def whoops(rng: random.Random, word_limit: int) -> str:
    """A scene that breaks common sense on purpose: wrong habitat, wrong scale, wrong era, wrong physics."""
    w = vocab().whoops
    family = rng.choices([f for f, _ in _FAMILIES], weights=[n for _, n in _FAMILIES])[0]
    witness = maybe(rng, 0.8, ", " + rng.choice(w.witnesses))
    shot = maybe(rng, 0.5, ", " + rng.choice(w.shots))
    return f"{cap(family(rng))}{witness}{shot}."
