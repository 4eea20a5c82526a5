"""The whoops grammar: scenes that break common sense on purpose (wrong habitat, wrong scale, wrong era,
wrong physics...); words from `vocab/whoops.json`.

Each family also records its scene: the main figure (with its mood, what it does, where), and the second
thing a family names (the wrong tool, the predator); the witnesses and shots are left out."""

from __future__ import annotations

import random

from ..template_vocab import vocab
from .english import cap, maybe, with_article
from .scene import Scene, bare


def _moody(rng: random.Random, creature: str, scene: Scene) -> tuple[str, int]:
    """'a penguin' -> 'a sunburned penguin' half of the time; and the creature's index in `scene`."""
    if rng.random() < 0.5:
        return creature, scene.entity(bare(creature))
    mood, noun = rng.choice(vocab().whoops.moods), creature.split(" ", 1)[1]
    return with_article(f"{mood} {noun}"), scene.entity(noun, mood)


def _wrong_habitat(rng: random.Random, scene: Scene) -> str:
    w = vocab().whoops
    creature, home = rng.choice(tuple(w.creatures.items()))
    place = rng.choice(w.places[rng.choice(w.clashes[home])])
    who, index = _moody(rng, creature, scene)
    habit = rng.choice(w.habits)
    scene.attribute(index, habit)
    scene.place(place, index)
    return f"{who} {habit} {place}"


def _animal_at_work(rng: random.Random, scene: Scene) -> str:
    w = vocab().whoops
    job, places = rng.choice(tuple(w.jobs.items()))
    attire = maybe(rng, 0.6, " " + rng.choice(w.attire))
    who, index = _moody(rng, rng.choice(w.workers), scene)
    work = f"{job} {rng.choice(places)}"
    scene.attribute(index, attire.strip(), work)
    return f"{who}{attire} {work}"


def _wrong_physics(rng: random.Random, scene: Scene) -> str:
    w = vocab().whoops
    thing, state = rng.choice(((w.hot_things, w.underwater), (w.cold_things, w.heat), (w.heavy_things, w.floating)))
    thing, state = rng.choice(thing), rng.choice(state)
    scene.entity(bare(thing), state)
    return f"{thing} {state}"


def _wrong_scale(rng: random.Random, scene: Scene) -> str:
    w = vocab().whoops
    if rng.random() < 0.5:
        thing, spot = rng.choice(w.tiny), rng.choice(w.tiny_spots)
    else:
        thing, spot = rng.choice(w.giant), rng.choice(w.giant_spots)
    size, noun = bare(thing).split(" ", 1)  # 'a tiny elephant', 'an enormous snail'
    scene.entity(noun, size, spot)
    return f"{thing} {spot}"


def _wrong_material(rng: random.Random, scene: Scene) -> str:
    w = vocab().whoops
    thing, material, setting = rng.choice(w.objects), rng.choice(w.materials), rng.choice(w.settings)
    scene.place(setting, scene.entity(bare(thing), material))
    return f"{thing} {material} {setting}"


def _wrong_era(rng: random.Random, scene: Scene) -> str:
    w = vocab().whoops
    person, places = rng.choice(tuple(w.eras.items()))
    gadget, place = rng.choice(w.gadgets), rng.choice(places)
    scene.place(place, scene.entity(bare(person), gadget))
    return f"{person} {gadget} {place}"


def _role_reversal(rng: random.Random, scene: Scene) -> str:
    w = vocab().whoops
    prey, predator = rng.choice(tuple(w.prey.items()))
    act, place = rng.choice(w.reversals).format(p=predator), rng.choice(w.reversal_places)
    index = scene.entity(bare(prey), act)
    scene.entity(predator)
    scene.place(place, index)
    return f"{prey} {act} {place}"


def _wrong_tool(rng: random.Random, scene: Scene) -> str:
    w = vocab().whoops
    person, pos = rng.choice(tuple(w.people.items()))
    task = rng.choice(w.tasks).format(pos=pos)
    who, index = _moody(rng, person, scene)
    tool = rng.choice(w.wrong_tools)
    scene.attribute(index, f"{task} with {tool}")
    scene.entity(bare(tool))
    return f"{who} {task} with {tool}"


# Families are drawn roughly in proportion to how many distinct scenes each can write, so the small
# ones (a few dozen physics combinations) do not repeat themselves.
_FAMILIES = (
    (_wrong_habitat, 6), (_animal_at_work, 5), (_wrong_physics, 2), (_wrong_scale, 2),
    (_wrong_material, 4), (_wrong_era, 2), (_role_reversal, 2), (_wrong_tool, 4),
)  # fmt: skip


def whoops(rng: random.Random, word_limit: int) -> tuple[str, dict]:
    """A scene that breaks common sense on purpose: wrong habitat, wrong scale, wrong era, wrong physics."""
    w = vocab().whoops
    family = rng.choices([f for f, _ in _FAMILIES], weights=[n for _, n in _FAMILIES])[0]
    witness = maybe(rng, 0.8, ", " + rng.choice(w.witnesses))
    shot = maybe(rng, 0.5, ", " + rng.choice(w.shots))
    scene = Scene()
    return f"{cap(family(rng, scene))}{witness}{shot}.", scene.to_json()
