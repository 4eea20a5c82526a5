"""The paragraph grammar (Localized-Narratives-style): a long description told region by region, as many
sentences as the word limit allows; words and sentence templates from `vocab/paragraph.json`."""

from __future__ import annotations

import random

from ..template_vocab import ParagraphScene, vocab
from .english import be, cap, with_article


def _person_sentence(rng: random.Random, subject: str, pronoun: str, scene: ParagraphScene) -> str:
    """What the main person wears, has or holds; a beard or a dress only where they fit the subject."""
    v = vocab()
    p, feminine = v.paragraph, v.attribute.feminine_garments
    woman = pronoun == "she"
    top = rng.choice([g for g in p.tops if woman or g not in feminine])
    other = rng.choice([g for g in p.other_clothes if woman or g not in feminine])
    hair = [h for h in p.hair if h != "a beard" or subject in p.bearded]
    colours, garments = rng.sample(p.colours, 2), (top, other)
    c1, c2 = (f"{colour} {garment}" for colour, garment in zip(colours, garments, strict=True))
    c1, c2 = (c if c.split()[-1] in p.plural_clothes else with_article(c) for c in (c1, c2))
    return rng.choice(p.person_sentences).format(
        P=cap(pronoun), c1=c1, c2=c2, h=rng.choice(scene.held), hair=rng.choice(hair)
    )


def paragraph(rng: random.Random, word_limit: int) -> str:
    """A long description told region by region: who is where, then the sides, the background, top, bottom."""
    p = vocab().paragraph
    scene = p.scenes[rng.choice(list(p.scenes))]
    subject, pronoun = rng.choice(tuple(p.people.items()))
    obj = {"he": "him", "she": "her"}.get(pronoun, pronoun)
    action = rng.choice(scene.actions)
    place = rng.choice([x for x in scene.places if x.split()[-1] not in action.split()] or scene.places)
    opener = rng.choice(p.openers).format(s=subject, a=action, p=place, t=scene.taken)
    named = set(opener.lower().rstrip(".").split())
    side_items = rng.sample([x for x in scene.side if x.split()[-1] not in named], 6)
    sides = rng.sample(("left", "right"), 2)
    candidates = [_person_sentence(rng, subject, pronoun, scene)]
    for side, items in zip(sides, (side_items[:3], side_items[3:]), strict=True):
        x, y, z = items
        candidates.append(rng.choice(p.side_sentences).format(side=side, x=x, y=y, z=z, o=obj, be=be(x)))
    x, y, z = rng.sample(scene.background, 3)
    candidates.append(rng.choice(p.back_sentences).format(x=x, y=y, z=z, o=obj))
    for things, templates in ((scene.top, p.top_sentences), (scene.bottom, p.bottom_sentences)):
        x = rng.choice(things)
        candidates.append(rng.choice(templates).format(x=x, be=be(x)))
    rng.shuffle(candidates)
    sentences, words = [opener], len(opener.split())
    for sentence in candidates:
        n = len(sentence.split())
        if words + n <= word_limit:
            sentences.append(sentence)
            words += n
    return " ".join(sentences)
