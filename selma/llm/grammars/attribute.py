"""The attribute-binding grammar: several objects, each with its own colour, material or shape; words from
`vocab/attribute.json` (people, garments, animals' accessories) and `vocab/objects.json`, scenes from
`vocab/spatial.json`."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..template_vocab import vocab
from .english import cap, with_article


class _Attributes:
    """Hands out attribute words so that no two objects of one prompt share a colour, material or shape."""

    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()

    def _fresh(self, options: Sequence[str]) -> str | None:
        """A word (or phrase) sharing no word with those already handed out: 'black and white' blocks 'black'."""
        free = [o for o in options if self.used.isdisjoint(o.split())]
        if not free:
            return None
        word = self.rng.choice(free)
        self.used.update(word.split())
        return word

    def thing(self, noun: str) -> str:
        """'a round blue ceramic vase' -> shape, colour, material in English adjective order."""
        rng, o = self.rng, vocab().objects
        if noun not in o.materials:
            if noun in o.fixed_adjectives:
                options = o.fixed_adjectives[noun]
            else:
                options = o.animal_colours if noun in o.animal_things else o.colours
            return with_article(f"{self._fresh(options) or ''} {noun}".strip())
        kinds = ["colour"]
        kinds += ["material"] if o.materials[noun] else []
        kinds += ["shape"] if noun in o.shaped else []
        chosen = set(rng.sample(kinds, rng.randint(1, min(2, len(kinds)))))
        words = [
            self._fresh(o.shapes) if "shape" in chosen else None,
            self._fresh(o.colours) if "colour" in chosen else None,
            self._fresh(o.materials[noun]) if "material" in chosen else None,
        ]
        return with_article(" ".join([w for w in words if w] + [noun]))

    def animal(self, noun: str) -> str:
        """'a black dog with a red collar'."""
        o = vocab().objects
        accessory = f"{self._fresh(o.colours)} {self.rng.choice(vocab().attribute.animal_accessories[noun])}"
        return f"{with_article(f'{self._fresh(o.animal_colours)} {noun}')} with {with_article(accessory)}"

    def garment(self, name: str) -> str:
        a = vocab().attribute
        colour = self._fresh(vocab().objects.colours)
        material = self._fresh(a.garments[name]) if a.garments[name] and self.rng.random() < 0.5 else None
        phrase = " ".join(w for w in (colour, material, name) if w)
        return phrase if name in a.plural_garments else with_article(phrase)


def attribute(rng: random.Random, word_limit: int) -> str:
    """Several objects, each with its own colour / material / shape, which a model must not mix up."""
    v = vocab()
    a = v.attribute
    attrs = _Attributes(rng)
    pattern = rng.randrange(7)
    if pattern == 5:
        person, held = rng.choice(a.people), attrs.thing(rng.choice(a.held_things))
        feminine = "woman" in person or "girl" in person
        g1, g2 = rng.sample([g for g in a.garments if feminine or g not in a.feminine_garments], 2)
        return f"{cap(person)} wearing {attrs.garment(g1)} and {attrs.garment(g2)}, holding {held}."
    if pattern == 6:
        x, y = rng.sample(list(a.animal_accessories), 2)
        link = rng.choice(("next to", "beside", "sitting near", "and"))
        return f"{cap(attrs.animal(x))} {link} {attrs.animal(y)} {rng.choice(a.places)}."
    scenes = v.spatial.scenes
    scene = scenes[rng.choice(list(scenes))]
    pool = sorted(set(scene.objects) | set(scene.smalls) | set(scene.supports))
    x, y, z = (attrs.thing(n) for n in rng.sample(pool, 3))
    where = rng.choice(scene.where)
    if pattern == 0:
        return f"{cap(x)} and {y} {where}."
    if pattern == 1:
        return f"{cap(x)}, {y} and {z} {where}."
    if pattern == 2:
        return f"{cap(where)}, {x} sits next to {y}."
    if pattern == 3:
        return f"{cap(x)} on the left and {y} on the right, {where}."
    return f"{rng.choice(v.photos.openers)} {x}, {y} and {z} {where}."
