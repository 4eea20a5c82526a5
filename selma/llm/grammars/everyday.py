"""The everyday grammar: short COCO-style captions of ordinary scenes (people, animals, food, rooms,
vehicles); words from `vocab/everyday.json`, animals and vehicles from `vocab/counting.json`."""

from __future__ import annotations

import random

from ..template_vocab import vocab
from .english import cap, maybe, plural, with_article


def _people_scene(rng: random.Random) -> str:
    v = vocab()
    e = v.everyday
    subject = rng.choice(e.people)
    several = subject.startswith(("two ", "a group", "a couple", "a family", "a man and", "an elderly couple"))
    if not several and rng.random() < 0.5:
        subject += f" in {with_article(rng.choice(v.objects.colours) + ' ' + rng.choice(e.clothes))}"
    # Activity groups are drawn in proportion to the scenes they can make, so small groups do not repeat.
    weights = [len(g.activities) * len(g.places) for g in e.activity_groups]
    group = rng.choices(e.activity_groups, weights=weights)[0]
    act, place = rng.choice(group.activities), rng.choice(group.places)
    extras = e.neutral if group.setting == "indoor" else e.extras + e.crowds
    extra = maybe(rng, 0.7, " " + rng.choice(extras))
    if rng.random() < 0.3:
        return f"{cap(subject)} {'are' if several else 'is'} {act} {place}{extra}."
    return f"{cap(subject)} {act} {place}{extra}."


def _animal_scene(rng: random.Random) -> str:
    v = vocab()
    e = v.everyday
    name = rng.choice(("pets", "farm", "wildlife", "savanna", "waterbirds"))
    cat = v.counting.categories[name]
    noun, adj = rng.choice(cat.nouns), rng.choice(cat.adjectives)
    action, place = rng.choice(cat.actions), rng.choice(cat.places)
    extra = maybe(rng, 0.75, " " + rng.choice(e.neutral if name == "pets" else e.extras))
    friend = rng.choice([n for n in cat.nouns if n != noun])
    company = maybe(rng, 0.4, f" next to {with_article(rng.choice(cat.adjectives) + ' ' + friend)}")
    if name in e.groups and rng.random() < 0.4:
        return f"{rng.choice(e.groups[name])} {adj} {plural(noun)} {action} {place}{extra}."
    return f"{cap(with_article(adj + ' ' + noun))} {action} {place}{company}{extra}."


def _food_scene(rng: random.Random) -> str:
    e = vocab().everyday
    container, main = rng.choice(e.food_containers), rng.choice(e.food_mains)
    side, side2 = rng.sample(e.food_sides, 2)
    context = rng.choice(e.food_contexts)
    if rng.random() < 0.5:
        return f"{container} with {main}, {side} and {side2} {context}."
    return f"{container} holding {main} and {side} {context}."


def _room_scene(rng: random.Random) -> str:
    e = vocab().everyday
    room = rng.choice(list(e.rooms))
    f1, f2, f3 = rng.sample(e.rooms[room], 3)
    head = with_article(f"{rng.choice(e.room_adjectives)} {room}")
    extra = maybe(rng, 0.8, ", " + rng.choice(e.room_extras))
    if rng.random() < 0.5:
        return f"{cap(head)} with {f1}, {f2} and {f3}{extra}."
    return f"{cap(head)} that has {f1} and {f2} next to {f3}{extra}."


def _vehicle_scene(rng: random.Random) -> str:
    v = vocab()
    e = v.everyday
    kind = rng.randrange(3)
    extra = maybe(rng, 0.7, " " + rng.choice(e.extras))
    if kind == 0:
        train = with_article(f"{rng.choice(e.train_colours)} {rng.choice(e.train_kinds)}")
        return f"{cap(train)} {rng.choice(e.train_actions)}{extra}."
    if kind == 1:
        plane = with_article(f"{rng.choice(e.plane_colours)} {rng.choice(e.plane_kinds)}")
        return f"{cap(plane)} {rng.choice(e.plane_actions)}{extra}."
    cat = v.counting.categories[rng.choice(("vehicles", "boats"))]
    thing = with_article(f"{rng.choice(cat.adjectives)} {rng.choice(cat.nouns)}")
    return f"{cap(thing)} {rng.choice(cat.actions)} {rng.choice(cat.places)}{extra}."


def everyday(rng: random.Random, word_limit: int) -> str:
    """A short COCO-style caption of an ordinary scene."""
    scene = rng.choice((_people_scene,) * 4 + (_animal_scene,) * 2 + (_food_scene, _room_scene, _vehicle_scene))
    return scene(rng)
