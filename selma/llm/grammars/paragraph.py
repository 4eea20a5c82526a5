"""The paragraph grammar (Localized-Narratives-style): a long description told region by region, as many
sentences as the word limit allows; words and sentence templates from `vocab/paragraph.json`.

Its scene records the main person (what they do, where, what they wear and hold) and the things each region
names with 'a ...' or as a plain plural, from the sentences that made it into the text only; 'the sky', 'the
floor' and where each thing sits in the picture are left out."""

from __future__ import annotations

import random
from collections.abc import Callable

from ..template_vocab import ParagraphScene, vocab
from .english import be, cap, with_article
from .scene import Scene, bare

Record = Callable[[Scene], None]  # adds what one sentence says to the scene (person = entity 0)


def _mention(scene: Scene, item: str) -> int | None:
    """The entity of an item a sentence names ('a parked car', 'trees'), reusing one of the same noun; None for
    'the road' and the like."""
    if item.startswith("the "):
        return None
    index = scene.phrase(item)
    noun = scene.entities[index]["noun"]
    same = next(i for i, e in enumerate(scene.entities) if e["noun"] == noun)
    if same != index:
        scene.entities.pop()
    return same


def _items(template: str, **items: str) -> Record:
    """Records the items a template actually shows ('{x} and {y}' shows two of three)."""
    shown = [item for key, item in items.items() if "{" + key + "}" in template]

    def record(scene: Scene) -> None:
        for item in shown:
            _mention(scene, item)

    return record


def _person_sentence(rng: random.Random, subject: str, pronoun: str, scene: ParagraphScene) -> tuple[str, Record]:
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
    template = rng.choice(p.person_sentences)
    held = rng.choice(scene.held)
    sentence = template.format(P=cap(pronoun), c1=c1, c2=c2, h=held, hair=rng.choice(hair))

    def record(s: Scene) -> None:
        for key, colour, garment in (("{c1}", colours[0], top), ("{c2}", colours[1], other)):
            if key in template:
                plural = garment in p.plural_clothes
                worn = s.entity(garment, colour, number="plural" if plural else "")
                if "is wearing" in template:
                    s.relate(0, "wearing", worn)
        if "{h}" in template:
            thing = _mention(s, held)
            if thing is not None:
                s.relate(0, "holding", thing)

    return sentence, record


def paragraph(rng: random.Random, word_limit: int) -> tuple[str, dict]:
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
        template = rng.choice(p.side_sentences)
        sentence = template.format(side=side, x=x, y=y, z=z, o=obj, be=be(x))
        candidates.append((sentence, _items(template, x=x, y=y, z=z)))
    x, y, z = rng.sample(scene.background, 3)
    template = rng.choice(p.back_sentences)
    candidates.append((template.format(x=x, y=y, z=z, o=obj), _items(template, x=x, y=y, z=z)))
    for things, templates in ((scene.top, p.top_sentences), (scene.bottom, p.bottom_sentences)):
        x = rng.choice(things)
        candidates.append((rng.choice(templates).format(x=x, be=be(x)), _items("{x}", x=x)))
    rng.shuffle(candidates)
    record = Scene()
    record.place(place, record.entity(bare(subject), action))
    sentences, words = [opener], len(opener.split())
    for sentence, add in candidates:
        n = len(sentence.split())
        if words + n <= word_limit:
            sentences.append(sentence)
            add(record)
            words += n
    return " ".join(sentences), record.to_json()
