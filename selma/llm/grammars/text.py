"""The text-rendering grammar: a sign, shirt, cake, book cover... showing one short quoted text; words from
`vocab/text.json`."""

from __future__ import annotations

import random

from ..template_vocab import vocab
from .english import cap, maybe, with_article

_PREPOSITIONS = ("in", "on", "at", "by", "beside", "under", "next", "near", "along", "above", "outside", "inside")


def _text(rng: random.Random, family: str) -> str:
    """A short text to render, fitting the surface ('Rosa's Bakery' on an awning, 'Sugar' on a jar)."""
    t = vocab().text
    if family == "shop":
        kind = rng.choice(t.shop_kinds)
        return rng.choice(
            (
                f"{rng.choice(t.first_names)}'s {kind}",
                f"{rng.choice(t.shop_words)} {kind}",
                f"The {rng.choice(t.shop_words)}",
            )
        )
    template = rng.choice(t.fixed_texts[family])
    return template.format(
        name=rng.choice(t.first_names),
        town=rng.choice(t.towns),
        adj=rng.choice(t.title_adjectives),
        noun=rng.choice(t.title_nouns),
    )


def text(rng: random.Random, word_limit: int) -> str:
    """A sign, shirt, cake, book cover... showing one short quoted text."""
    v = vocab()
    t = v.text
    s = rng.choice(t.surfaces)
    surface = s.surface.format(c=rng.choice(t.surface_colours), w=rng.choice(t.surface_wear), f=rng.choice(t.flavours))
    surface = with_article(surface.split(" ", 1)[1])  # the filled-in adjective may need 'an'
    shown = rng.choice(t.modes[s.mode]).format(q=f'"{_text(rng, s.family)}"')
    if shown.endswith('"') and s.mode in t.styles and rng.random() < 0.6:
        shown += " " + rng.choice(t.styles[s.mode])
    context = rng.choice(s.contexts)
    extra = maybe(rng, 0.85, ", " + rng.choice(v.photos.light_extras))
    pattern = rng.randrange(4)
    if pattern == 0:
        return f"{cap(surface)} {shown}, {context}{extra}."
    if pattern == 1:
        return f"{rng.choice(t.shots)} {surface} {shown}, {context}{extra}."
    if pattern == 2 and context.split(" ", 1)[0] in _PREPOSITIONS:
        return f"{cap(context)}, {surface} {shown}{extra}."
    return f"{cap(surface)} {context}, {shown}{extra}."
