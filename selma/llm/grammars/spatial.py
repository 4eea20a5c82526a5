"""The spatial grammar: two or three objects placed by explicit relations, words from `vocab/spatial.json`
(scenes, relations) and `vocab/objects.json` (the adjectives that fit each object)."""

from __future__ import annotations

import random

from ..template_vocab import SpatialScene, vocab
from .english import cap, with_article
from .scene import Scene


def _describe(rng: random.Random, noun: str, used: set[str], p_adjective: float = 0.8) -> tuple[str, tuple[str, ...]]:
    """('a red ceramic mug', ('red', 'ceramic')): an article, at most two fitting adjectives not yet `used` in the
    prompt, the noun; and the adjectives."""
    if rng.random() >= p_adjective:
        return with_article(noun), ()
    o = vocab().objects
    if noun in o.fixed_adjectives:
        options = [(a,) for a in o.fixed_adjectives[noun]]
    elif noun in o.animal_things:
        options = [(a,) for a in o.animal_colours]
    else:
        colour = rng.choice(o.colours)
        materials = o.materials.get(noun, ())
        options = [(colour,)] + [(m,) for m in materials] + [(colour, m) for m in materials]
    options = [x for x in options if used.isdisjoint(" ".join(x).split())]
    if not options:
        return with_article(noun), ()
    adjectives = rng.choice(options)
    used.update(" ".join(adjectives).split())
    return with_article(" ".join((*adjectives, noun))), adjectives


def _relation(rng: random.Random, scene: SpatialScene) -> tuple[str, str, str]:
    """(subject noun, relation, object noun), with vertical relations only where they are physical."""
    v = vocab()
    animals, relations = v.objects.animal_things, v.spatial
    kinds = ["lateral"] * 5 + ["on"] * 2
    kinds += ["under"] if scene.covers else []
    kinds += ["above"] if scene.hangers else []
    while True:
        kind = rng.choice(kinds)
        if kind == "on":
            a, b = rng.choice(scene.smalls), rng.choice(scene.supports)
            animal = a in animals
            rel = rng.choice(("sitting on", "lying on", "on top of") if animal else relations.on[:3])
        elif kind == "under":
            a, b = rng.choice(scene.smalls), rng.choice(scene.covers)
            rel = rng.choice(("hiding under", "sitting under", "under") if a in animals else relations.under)
        elif kind == "above":
            a, b = rng.choice(scene.hangers), rng.choice(scene.hang_over)
            rel = rng.choice(relations.above)
        else:
            a, b = rng.sample(scene.objects, 2)
            rel = rng.choice(relations.lateral)
        if a != b:  # a towel on a towel
            return a, rel, b


def spatial(rng: random.Random, word_limit: int) -> tuple[str, dict]:
    """Two or three objects placed by explicit relations: left of, behind, on top of, under, above."""
    v = vocab()
    scenes = v.spatial.scenes
    scene = scenes[rng.choice(list(scenes))]
    where = rng.choice(scene.where)
    a, rel, b = _relation(rng, scene)
    others = [n for n in scene.objects if n not in (a, b)]
    c = rng.choice(others)
    used: set[str] = set()
    (A, a_adj), (B, b_adj), (C, c_adj) = _describe(rng, a, used), _describe(rng, b, used), _describe(rng, c, used)
    rel2 = rng.choice(v.spatial.lateral)
    pattern = rng.randrange(7)
    record = Scene()
    if pattern in (3, 4):
        used.clear()
        nouns = rng.sample(scene.objects, 3)
        (x, x_adj), (y, y_adj), (z, z_adj) = (_describe(rng, n, used) for n in nouns)
        ids = [record.entity(n, *adjectives) for n, adjectives in zip(nouns, (x_adj, y_adj, z_adj), strict=True)]
        record.place(where, *ids)
        if pattern == 3:
            record.relate(ids[0], "between", ids[1], ids[2])
            return f"{cap(x)} between {y} and {z} {where}.", record.to_json()
        for i, side in zip(ids, ("on the left", "in the middle", "on the right"), strict=True):
            record.place(side, i)
        return f"{cap(where)}: {x} on the left, {y} in the middle and {z} on the right.", record.to_json()
    ids = [record.entity(a, *a_adj), record.entity(b, *b_adj)]
    record.relate(ids[0], rel, ids[1])
    if pattern in (2, 5):
        ids.append(record.entity(c, *c_adj))
        record.relate(ids[2], rel2, ids[1] if pattern == 2 else ids[0])
    record.place(where, *ids)
    if pattern == 0:
        text = f"{cap(A)} {rel} {B} {where}."
    elif pattern == 1:
        text = f"{cap(where)}, {A} is {rel} {B}."
    elif pattern == 2:
        text = f"{cap(A)} {rel} {B} {where}, with {C} {rel2} the {b}."
    elif pattern == 5:
        text = f"{cap(A)} {rel} {B}, while {C} is {rel2} the {a}, {where}."
    else:
        text = f"{rng.choice(v.photos.openers)} {A} {rel} {B} {where}."
    return text, record.to_json()
