"""Read a shapes-world prompt back into the structured spec it says (the inverse of
`selma.llm.grammars.shapes.describe`), so that a prompt with no recorded scene can still be checked exactly.

`parse_prompt(text)` accepts exactly the language the grammars write: an opener, noun phrases ('a small red
circle', 'two blue squares', 'the red circle' for one already named) separated by a relation phrase (with an
optional verb) or a joiner, and an ending, all from `vocab/shapes.json`. Anything else returns None: the prompt is
not of this world, and only a VLM can judge it.
"""

from __future__ import annotations

import re
from functools import cache

from ..llm.template_vocab import vocab


@cache
def _grammar() -> tuple[re.Pattern, set[str], dict[str, str], set[str], set[str]]:
    w = vocab().shapes
    alternatives = "|".join
    counts = alternatives(w.count_words)
    noun_phrase = re.compile(
        rf"\b(a|an|the|{counts}) (?:({alternatives(w.sizes)}) )?({alternatives(w.colours)}) "
        rf"({alternatives(w.shapes)})(s|es)?\b"
    )
    openers = {o.lower() for o in w.openers} | {"there is", "there are"}
    relations = {" ".join(x for x in (verb, phrase) if x): phrase for verb in w.verbs for phrase in w.relations}
    joiners = {j.strip() for j in w.joiners} | {",", "and"}
    endings = {e.strip(" ,") for e in w.endings}
    return noun_phrase, openers, relations, joiners, endings


def _clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text.strip().lower())
    return re.sub(r"\s*,\s*", ", ", text.removesuffix(".")).strip()


def parse_prompt(text: str) -> dict | None:
    """The spec ({"groups", "relations"}) a shapes-world prompt says, or None when it is not one."""
    noun_phrase, openers, relations, joiners, endings = _grammar()
    text = _clean(text)
    matches = list(noun_phrase.finditer(text))
    if not matches or text[: matches[0].start()].strip() not in openers:
        return None
    if text[matches[-1].end() :].strip(" ,") not in endings:
        return None
    count_words = vocab().shapes.count_words
    groups: list[dict] = []
    index: dict[tuple[str, str], int] = {}
    mentions: list[int] = []
    for m in matches:
        determiner, size, colour, shape, plural = m.groups()
        if determiner == "the":
            if size or plural or (shape, colour) not in index:
                return None
            mentions.append(index[shape, colour])
            continue
        count = 1 if determiner in ("a", "an") else count_words.index(determiner) + 1
        if (count > 1) != bool(plural) or (shape, colour) in index:
            return None
        index[shape, colour] = len(groups)
        mentions.append(len(groups))
        groups.append({"shape": shape, "colour": colour, "size": size, "count": count})
    found = []
    for i in range(len(matches) - 1):
        gap = text[matches[i].end() : matches[i + 1].start()].strip()
        if gap in relations:
            subject, obj = mentions[i], mentions[i + 1]
            if subject == obj or groups[subject]["count"] != 1 or groups[obj]["count"] != 1:
                return None
            found.append({"subject": subject, "relation": relations[gap], "object": obj})
        elif gap not in joiners:
            return None
    return {"groups": groups, "relations": found}


def prompt_scene(text: str) -> dict | None:
    """The DSG scene (entities with their checks, relations) of a shapes-world prompt read from its text, as the
    template grammar records it for the prompts it writes; None when the text is not a shapes-world prompt. For
    prompts typed by hand (held-out lists), which carry no record."""
    from ..llm.grammars.shapes import scene_of

    spec = parse_prompt(text)
    return None if spec is None else scene_of(spec)
