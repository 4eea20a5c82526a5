"""The everyday grammar: short COCO-style captions of ordinary scenes (people, animals, food, rooms,
vehicles); words from `vocab/everyday.json`, animals and vehicles from `vocab/counting.json`."""

from __future__ import annotations

import random

from ..template_vocab import vocab
from .english import cap, maybe, plural, with_article
from .scene import Scene

Written = tuple[str, Scene]


def _people(scene: Scene, subject: str) -> list[int]:
    """The people a subject names: 'two men' (counted), 'a man and a woman' (two), 'a woman with long hair' (a
    woman: what she has is left out)."""
    return [scene.phrase(part.split(" with ", 1)[0]) for part in subject.split(" and ")]


def _people_scene(rng: random.Random) -> Written:
    v = vocab()
    e = v.everyday
    subject = rng.choice(e.people)
    scene = Scene()
    people = _people(scene, subject)
    several = subject.startswith(("two ", "a group", "a couple", "a family", "a man and", "an elderly couple"))
    if not several and rng.random() < 0.5:
        colour, garment = rng.choice(v.objects.colours), rng.choice(e.clothes)
        subject += f" in {with_article(colour + ' ' + garment)}"
        scene.relate(people[0], "in", scene.entity(garment, colour))
    # Activity groups are drawn in proportion to the scenes they can make, so small groups do not repeat.
    weights = [len(g.activities) * len(g.places) for g in e.activity_groups]
    group = rng.choices(e.activity_groups, weights=weights)[0]
    act, place = rng.choice(group.activities), rng.choice(group.places)
    for person in people:
        scene.attribute(person, act)
    scene.place(place, *people)
    extras = e.neutral if group.setting == "indoor" else e.extras + e.crowds
    extra = maybe(rng, 0.7, " " + rng.choice(extras))
    if rng.random() < 0.3:
        return f"{cap(subject)} {'are' if several else 'is'} {act} {place}{extra}.", scene
    return f"{cap(subject)} {act} {place}{extra}.", scene


def _animal_scene(rng: random.Random) -> Written:
    v = vocab()
    e = v.everyday
    name = rng.choice(("pets", "farm", "wildlife", "savanna", "waterbirds"))
    cat = v.counting.categories[name]
    noun, adj = rng.choice(cat.nouns), rng.choice(cat.adjectives)
    action, place = rng.choice(cat.actions), rng.choice(cat.places)
    extra = maybe(rng, 0.75, " " + rng.choice(e.neutral if name == "pets" else e.extras))
    friend, friend_adj = rng.choice([n for n in cat.nouns if n != noun]), rng.choice(cat.adjectives)
    company = maybe(rng, 0.4, f" next to {with_article(friend_adj + ' ' + friend)}")
    scene = Scene()
    if name in e.groups and rng.random() < 0.4:
        scene.place(place, scene.entity(plural(noun), adj, action, number="plural"))
        return f"{rng.choice(e.groups[name])} {adj} {plural(noun)} {action} {place}{extra}.", scene
    animal = scene.entity(noun, adj, action)
    scene.place(place, animal)
    if company:
        scene.relate(animal, "next to", scene.entity(friend, friend_adj))
    return f"{cap(with_article(adj + ' ' + noun))} {action} {place}{company}{extra}.", scene


def _food_scene(rng: random.Random) -> Written:
    e = vocab().everyday
    container, main = rng.choice(e.food_containers), rng.choice(e.food_mains)
    side, side2 = rng.sample(e.food_sides, 2)
    context = rng.choice(e.food_contexts)
    scene = Scene()
    scene.place(context, scene.phrase(container[:1].lower() + container[1:]))
    if rng.random() < 0.5:  # 'a plate with pasta': the food is only said to be there
        for food in (main, side, side2):
            scene.phrase(food)
        return f"{container} with {main}, {side} and {side2} {context}.", scene
    for food in (main, side):
        scene.relate(0, "holding", scene.phrase(food))
    return f"{container} holding {main} and {side} {context}.", scene


def _room_scene(rng: random.Random) -> Written:
    e = vocab().everyday
    room = rng.choice(list(e.rooms))
    f1, f2, f3 = rng.sample(e.rooms[room], 3)
    adjective = rng.choice(e.room_adjectives)
    head = with_article(f"{adjective} {room}")
    extra = maybe(rng, 0.8, ", " + rng.choice(e.room_extras))
    scene = Scene()
    scene.entity(room, adjective)
    things = [scene.phrase(f) for f in (f1, f2, f3)]
    if rng.random() < 0.5:
        return f"{cap(head)} with {f1}, {f2} and {f3}{extra}.", scene
    scene.relate(things[1], "next to", things[2])
    return f"{cap(head)} that has {f1} and {f2} next to {f3}{extra}.", scene


def _vehicle_scene(rng: random.Random) -> Written:
    v = vocab()
    e = v.everyday
    kind = rng.randrange(3)
    extra = maybe(rng, 0.7, " " + rng.choice(e.extras))
    scene = Scene()
    if kind in (0, 1):
        colours, kinds, actions = (
            (e.train_colours, e.train_kinds, e.train_actions) if kind == 0 else
            (e.plane_colours, e.plane_kinds, e.plane_actions)
        )  # fmt: skip
        colour, what = rng.choice(colours), rng.choice(kinds)
        action = rng.choice(actions)
        scene.entity(what, colour, action)
        return f"{cap(with_article(f'{colour} {what}'))} {action}{extra}.", scene
    cat = v.counting.categories[rng.choice(("vehicles", "boats"))]
    adjective, noun = rng.choice(cat.adjectives), rng.choice(cat.nouns)
    action, place = rng.choice(cat.actions), rng.choice(cat.places)
    scene.place(place, scene.entity(noun, adjective, action))
    return f"{cap(with_article(f'{adjective} {noun}'))} {action} {place}{extra}.", scene


def everyday(rng: random.Random, word_limit: int) -> tuple[str, dict]:
    """A short COCO-style caption of an ordinary scene."""
    scene = rng.choice((_people_scene,) * 4 + (_animal_scene,) * 2 + (_food_scene, _room_scene, _vehicle_scene))
    text, record = scene(rng)
    return text, record.to_json()
