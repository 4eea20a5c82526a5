"""The art grammar (DiffusionDB-style): a subject in a setting, then comma-separated modifiers; words from
`vocab/art.json`.

Its scene holds what can be checked: the subject (with what it does and where it is) and the medium as a
scene-wide fact ('Is it an oil painting?'); lighting, detail, palette and mood words are left out."""

from __future__ import annotations

import random

from ..template_vocab import vocab
from .english import maybe, with_article
from .scene import Scene, bare


def _medium(medium: str) -> str:
    """The medium as 'Is it ...?' reads it: 'an oil painting', but 'pixel art', 'acrylic on canvas'."""
    if medium.split(" ")[-1] in ("art", "glass") or " on " in medium:
        return medium
    return with_article(medium)


def art(rng: random.Random, word_limit: int) -> tuple[str, dict]:
    """A subject in a setting, then comma-separated medium, lighting, detail, palette... modifiers."""
    a = vocab().art
    scene = Scene()
    if rng.random() < 0.55:
        being = rng.choice(a.beings)
        action = maybe(rng, 0.5, " " + rng.choice(a.being_actions))
        subject = being + action
        scene.entity(bare(being), action.strip())
        lead = rng.choice(a.leads)
    else:
        subject = rng.choice(a.things)
        scene.entity(bare(subject))
        lead = rng.choice([lead for lead in a.leads if lead != "portrait of "])
    setting = maybe(rng, 0.85, " " + rng.choice(a.settings))
    if setting:
        scene.place(setting.strip(), 0)
    subject = lead + subject + setting
    subject += maybe(rng, 0.3, " " + rng.choice(a.times))
    groups = rng.sample((a.lighting, a.detail, a.palette, a.composition, a.mood), rng.randint(2, 4))
    modifiers = [rng.choice(a.media)] + [rng.choice(g) for g in groups]
    if rng.random() < 0.4:
        modifiers.append(rng.choice([d for d in a.detail if d not in modifiers]))
    scene.facts.append(_medium(modifiers[0]))
    return ", ".join([subject, *modifiers]), scene.to_json()
