"""The attribute-binding grammar: several objects, each with its own colour, material or shape; words from
`vocab/attribute.json` (people, garments, animals' accessories) and `vocab/objects.json`, scenes from
`vocab/spatial.json`."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..template_vocab import vocab
from .english import cap, with_article
from .scene import Scene, bare


class _Attributes:
    """Hands out attribute words so that no two objects of one prompt share a colour, material or shape, and
    records each described object in `scene` with the words it was given."""

    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()
        self.scene = Scene()
        self.ids: list[int] = []  # scene index of each phrase handed out, in order

    def _fresh(self, options: Sequence[str]) -> str | None:
        """A word (or phrase) sharing no word with those already handed out: 'black and white' blocks 'black'."""
        free = [o for o in options if self.used.isdisjoint(o.split())]
        if not free:
            return None
        word = self.rng.choice(free)
        self.used.update(word.split())
        return word

    def _add(self, noun: str, *words: str | None, number: str = "") -> None:
        self.ids.append(self.scene.entity(noun, *words, number=number))

    def thing(self, noun: str) -> str:
        """'a round blue ceramic vase' -> shape, colour, material in English adjective order."""
        rng, o = self.rng, vocab().objects
        if noun not in o.materials:
            if noun in o.fixed_adjectives:
                options = o.fixed_adjectives[noun]
            else:
                options = o.animal_colours if noun in o.animal_things else o.colours
            word = self._fresh(options)
            self._add(noun, word)
            return with_article(f"{word or ''} {noun}".strip())
        kinds = ["colour"]
        kinds += ["material"] if o.materials[noun] else []
        kinds += ["shape"] if noun in o.shaped else []
        chosen = set(rng.sample(kinds, rng.randint(1, min(2, len(kinds)))))
        words = [
            self._fresh(o.shapes) if "shape" in chosen else None,
            self._fresh(o.colours) if "colour" in chosen else None,
            self._fresh(o.materials[noun]) if "material" in chosen else None,
        ]
        self._add(noun, *words)
        return with_article(" ".join([w for w in words if w] + [noun]))

    def animal(self, noun: str) -> str:
        """'a black dog with a red collar'."""
        o = vocab().objects
        colour = self._fresh(o.colours)
        thing = self.rng.choice(vocab().attribute.animal_accessories[noun])
        fur = self._fresh(o.animal_colours)
        self._add(noun, fur)
        self._add(thing, colour)
        self.scene.relate(self.ids[-2], "with", self.ids[-1])
        return f"{with_article(f'{fur} {noun}')} with {with_article(f'{colour} {thing}')}"

    def garment(self, name: str) -> str:
        a = vocab().attribute
        colour = self._fresh(vocab().objects.colours)
        material = self._fresh(a.garments[name]) if a.garments[name] and self.rng.random() < 0.5 else None
        phrase = " ".join(w for w in (colour, material, name) if w)
        self._add(name, colour, material, number="plural" if name in a.plural_garments else "")
        return phrase if name in a.plural_garments else with_article(phrase)


def _slots(a, garment: str) -> set[str]:
    return {slot for slot, worn in a.garment_slots.items() if garment in worn}


def attribute(rng: random.Random, word_limit: int) -> tuple[str, dict]:
    """Several objects, each with its own colour / material / shape, which a model must not mix up."""
    v = vocab()
    a = v.attribute
    attrs = _Attributes(rng)
    scene = attrs.scene
    pattern = rng.randrange(7)
    if pattern == 5:
        person = rng.choice(a.people)
        who = scene.entity(bare(person))
        held = attrs.thing(rng.choice(a.held_things))
        feminine = "woman" in person or "girl" in person
        wearable = [g for g in a.garments if feminine or g not in a.feminine_garments]
        g1 = rng.choice(wearable)
        g2 = rng.choice([g for g in wearable if not _slots(a, g) & _slots(a, g1)])  # never two tops
        text = f"{cap(person)} wearing {attrs.garment(g1)} and {attrs.garment(g2)}, holding {held}."
        for thing, relation in zip(attrs.ids, ("holding", "wearing", "wearing"), strict=True):
            scene.relate(who, relation, thing)
        return text, scene.to_json()
    if pattern == 6:
        x, y = rng.sample(list(a.animal_accessories), 2)
        link = rng.choice(("next to", "beside", "sitting near", "and"))
        first, second, where = cap(attrs.animal(x)), attrs.animal(y), rng.choice(a.places)
        if link != "and":
            scene.relate(attrs.ids[0], link, attrs.ids[2])
        scene.place(where, attrs.ids[0], attrs.ids[2])
        return f"{first} {link} {second} {where}.", scene.to_json()
    scenes = v.spatial.scenes
    spot = scenes[rng.choice(list(scenes))]
    pool = sorted(set(spot.objects) | set(spot.smalls) | set(spot.supports))
    x, y, z = (attrs.thing(n) for n in rng.sample(pool, 3))
    where = rng.choice(spot.where)
    shown = attrs.ids[:3] if pattern in (1, 4) else attrs.ids[:2]
    scene.entities[:] = [scene.entities[i] for i in shown]  # z is drawn for every pattern, shown in two
    scene.place(where, *range(len(shown)))
    if pattern == 0:
        text = f"{cap(x)} and {y} {where}."
    elif pattern == 1:
        text = f"{cap(x)}, {y} and {z} {where}."
    elif pattern == 2:
        scene.relate(0, "next to", 1)
        text = f"{cap(where)}, {x} sits next to {y}."
    elif pattern == 3:
        scene.place("on the left", 0)
        scene.place("on the right", 1)
        text = f"{cap(x)} on the left and {y} on the right, {where}."
    else:
        text = f"{rng.choice(v.photos.openers)} {x}, {y} and {z} {where}."
    return text, scene.to_json()
