"""The text-rendering grammar: a sign, shirt, cake, book cover... showing one short quoted text; words from
`vocab/text.json`."""

from __future__ import annotations

import random

from ..template_vocab import vocab
from .english import cap, maybe, with_article
from .scene import Scene

_TIMES = ("morning", "afternoon", "evening", "day")
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


def _surface(template: str, filled: str) -> tuple[str, str]:
    """('wooden sign', 'weathered') from 'a {w} wooden sign' filled in as 'a weathered wooden sign': the words
    after the slot name the thing, the slot's word describes it ('a glass jar', with no slot: ('glass jar', ''))."""
    words = template.split(" ")[1:]
    slot = next((i for i, w in enumerate(words) if w.startswith("{")), len(words))
    noun = " ".join(words[slot + 1 :])
    if slot == len(words) or not noun:  # no slot, or nothing after it: the whole phrase is the thing
        return filled.split(" ", 1)[1], ""
    return noun, filled.split(" ", 1)[1][: -len(noun) - 1]


def text(rng: random.Random, word_limit: int) -> tuple[str, dict]:
    """A sign, shirt, cake, book cover... showing one short quoted text."""
    v = vocab()
    t = v.text
    s = rng.choice(t.surfaces)
    surface = s.surface.format(c=rng.choice(t.surface_colours), w=rng.choice(t.surface_wear), f=rng.choice(t.flavours))
    scene = Scene()
    thing = scene.entity(*_surface(s.surface, surface))
    surface = with_article(surface.split(" ", 1)[1])  # the filled-in adjective may need 'an'
    phrasing = rng.choice(t.modes[s.mode])
    quoted = _text(rng, s.family)
    scene.text.append(quoted)
    shown = phrasing.format(q=f'"{quoted}"')
    if shown.endswith('"') and s.mode in t.styles and rng.random() < 0.6:
        shown += " " + rng.choice(t.styles[s.mode])
    context = rng.choice(s.contexts)
    if context.rsplit(" ", 1)[-1] not in _TIMES:  # 'a storefront window on a snowy evening' is no place
        scene.place(context, thing)
    extra = maybe(rng, 0.85, ", " + rng.choice(v.photos.light_extras))
    pattern = rng.randrange(4)
    if pattern == 0:
        text = f"{cap(surface)} {shown}, {context}{extra}."
    elif pattern == 1:
        text = f"{rng.choice(t.shots)} {surface} {shown}, {context}{extra}."
    elif pattern == 2 and context.split(" ", 1)[0] in _PREPOSITIONS:
        text = f"{cap(context)}, {surface} {shown}{extra}."
    else:
        text = f"{cap(surface)} {context}, {shown}{extra}."
    return text, scene.to_json()
