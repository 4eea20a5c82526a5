"""The scene a template grammar builds a prompt from, recorded next to the prompt so that its DSG questions can be
derived exactly (`selma.evaluation.questions.scene_questions` reads it).

A grammar fills a `Scene` with only what its text says, using the very words it put in the text: entities (the
noun, its count and attributes), binary relations between entities, `places` (a literal phrase such as "on a
wooden desk" about one entity), the quoted text to render and scene-wide facts. Building a scene never draws from
the grammar's random generator, so recording scenes leaves every prompt as it was.
"""

from __future__ import annotations

from ..template_vocab import vocab
from .english import plural

_COUNT_WORDS = {"one": 1, "two": 2, "three": 3}


class Scene:
    """Entities, relations, places, text and global facts of one prompt; `to_json()` is the recorded dict."""

    def __init__(self) -> None:
        self.entities: list[dict] = []
        self.relations: list[dict] = []
        self.places: list[dict] = []
        self.text: list[str] = []
        self.facts: list[str] = []

    def entity(
        self, noun: str, *attributes: str | None, count: int = 1, count_word: str = "", number: str = ""
    ) -> int:
        """Add an entity and return its index. `count`/`count_word` only for a number the text states ('two');
        `number="plural"` for an uncounted plural ('boots', 'a herd of cows'), `"mass"` for 'pasta'; falsy
        attributes (a slot the grammar left empty) are skipped."""
        entity: dict = {"noun": noun, "plural": noun if number else plural(noun), "count": count}
        if count_word:
            entity["count_word"] = count_word
        if number:
            entity["number"] = number
        entity["attributes"] = [a for a in attributes if a]
        self.entities.append(entity)
        return len(self.entities) - 1

    def attribute(self, index: int, *attributes: str | None) -> None:
        self.entities[index]["attributes"].extend(a for a in attributes if a)

    def relate(self, subject: int, relation: str, obj: int, obj2: int | None = None) -> None:
        """'subject <relation> obj' ('to the left of'); with `obj2`: 'subject between obj and obj2'."""
        relation_ = {"subject": subject, "relation": relation, "object": obj}
        if obj2 is not None:
            relation_["object2"] = obj2
        self.relations.append(relation_)

    def place(self, phrase: str, *subjects: int) -> None:
        """A literal phrase the text says of each subject: 'on a wooden desk', 'on the left'."""
        self.places.extend({"subject": s, "place": phrase} for s in subjects)

    def phrase(self, phrase: str, *attributes: str | None) -> int:
        """An entity from a vocabulary noun phrase as the text shows it: 'a wooden dresser' (one), 'two armchairs'
        (counted), 'a few boats' or 'white cabinets' (plural), 'pasta' (mass)."""
        first, _, rest = phrase.partition(" ")
        if first in ("a", "an") and not rest.startswith("few "):
            return self.entity(rest, *attributes)
        if first in _COUNT_WORDS and rest:
            return self.entity(singular(rest), *attributes, count=_COUNT_WORDS[first], count_word=first)
        if first == "a" and rest.startswith("few "):
            return self.entity(rest[len("few ") :], *attributes, number="plural")
        if first == "the":
            phrase = rest
        return self.entity(phrase, *attributes, number="plural" if _looks_plural(phrase) else "mass")

    def to_json(self) -> dict:
        scene: dict = {"entities": self.entities}
        for key, value in (("relations", self.relations), ("places", self.places), ("text", self.text),
                           ("global", self.facts)):  # fmt: skip
            if value:
                scene[key] = value
        return scene


def bare(phrase: str) -> str:
    """The phrase without its leading 'a '/'an ': 'an old fisherman' -> 'old fisherman'."""
    first, _, rest = phrase.partition(" ")
    return rest if first in ("a", "an") and rest else phrase


def singular(noun_phrase: str) -> str:
    """The singular whose `plural()` is this phrase ('armchairs' -> 'armchair', 'men' -> 'man'); the phrase itself
    when none is found."""
    *front, last = noun_phrase.split(" ")
    candidates = [k for k, v in vocab().english.irregular_plurals.items() if v == last]
    candidates += [last[:-1], last[:-2], last[:-3] + "y"]
    for candidate in candidates:
        if candidate and plural(candidate) == last:
            return " ".join([*front, candidate])
    return noun_phrase


def _looks_plural(phrase: str) -> bool:
    """'white cabinets', 'stacks of paper', 'hanging pots and pans', 'people walking' are plural; 'pasta', 'corn on
    the cob' are not."""
    head = phrase
    for cut in (" of ", " on ", " with ", " in ", " and "):
        head = head.split(cut, 1)[0]
    words = head.split(" ")
    while len(words) > 1 and words[-1].endswith("ing"):  # 'people walking', 'birds flying'
        words.pop()
    last = words[-1]
    return last.endswith("s") and not last.endswith("ss") or last in ("people", "children", "men", "women")
