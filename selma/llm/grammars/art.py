"""The art grammar (DiffusionDB-style): a subject in a setting, then comma-separated modifiers; words from
`vocab/art.json`."""

from __future__ import annotations

import random

from ..template_vocab import vocab
from .english import maybe


def art(rng: random.Random, word_limit: int) -> str:
    """A subject in a setting, then comma-separated medium, lighting, detail, palette... modifiers."""
    a = vocab().art
    if rng.random() < 0.55:
        subject = rng.choice(a.beings) + maybe(rng, 0.5, " " + rng.choice(a.being_actions))
        lead = rng.choice(a.leads)
    else:
        subject = rng.choice(a.things)
        lead = rng.choice([lead for lead in a.leads if lead != "portrait of "])
    subject = lead + subject + maybe(rng, 0.85, " " + rng.choice(a.settings))
    subject += maybe(rng, 0.3, " " + rng.choice(a.times))
    groups = rng.sample((a.lighting, a.detail, a.palette, a.composition, a.mood), rng.randint(2, 4))
    modifiers = [rng.choice(a.media)] + [rng.choice(g) for g in groups]
    if rng.random() < 0.4:
        modifiers.append(rng.choice([d for d in a.detail if d not in modifiers]))
    return ", ".join([subject, *modifiers])
