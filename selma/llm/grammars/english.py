"""English for the template grammars: plurals, articles, capitals, 'is'/'are' agreement, optional phrases."""

from __future__ import annotations

import random

from ..template_vocab import vocab


def plural(noun: str) -> str:
    """Plural of a (possibly multi-word) noun: 'goose' -> 'geese', 'teddy bear' -> 'teddy bears'."""
    if " of " in noun:  # 'loaf of bread' -> 'loaves of bread'
        head, rest = noun.split(" of ", 1)
        return f"{plural(head)} of {rest}"
    *front, last = noun.split(" ")
    irregular = vocab().english.irregular_plurals
    if last in irregular:
        last = irregular[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join([*front, last])


def article(phrase: str) -> str:
    """'a' or 'an' for the sound the phrase starts with."""
    word = phrase.split(" ", 1)[0].lower()
    if word.startswith(("uni", "use", "usu", "eu", "one", "ewe")):
        return "a"
    if word.startswith(("hour", "honest", "honor", "heir")) or word == "8k":
        return "an"
    return "an" if word[:1] in "aeiou" else "a"


def with_article(phrase: str) -> str:
    return f"{article(phrase)} {phrase}"


def cap(text: str) -> str:
    """The text with its first letter upper-cased (the rest left alone, unlike `str.capitalize`)."""
    return text[:1].upper() + text[1:]


def is_plural_phrase(phrase: str) -> bool:
    """Rough number of a noun phrase, for 'there is/are': 'a few boxes' and 'rocks' are plural."""
    if phrase.startswith(("a few ", "some ", "two ", "three ")):
        return True
    if phrase.startswith(("a ", "an ", "the ")):
        return False
    head = phrase
    for cut in (" on ", " with ", " in ", " of ", " flying"):
        head = head.split(cut, 1)[0]
    return head.endswith("s")


def be(phrase: str) -> str:
    """'are' or 'is', agreeing with the noun phrase."""
    return "are" if is_plural_phrase(phrase) else "is"


def maybe(rng: random.Random, p: float, text: str) -> str:
    """`text` with probability `p`, else the empty string."""
    return text if rng.random() < p else ""
