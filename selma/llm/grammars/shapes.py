"""The shapes-world grammars: flat circles, squares and triangles in named colours and sizes, counted, bound to
their colours or placed by a relation; words from `vocab/shapes.json`.

A prompt is written from a structured spec, `{"groups": [{"shape", "colour", "size", "count"}], "relations":
[{"subject", "relation", "object"}]}` (a group is `count` objects of one shape and colour, `size` None when the
text does not say it; relations index groups of one object each), by `describe(spec, rng)`, which returns the
text and the scene it says (`scene_of(spec)`). Each group is one scene entity named by its colour and shape ('red
circle'), so no two entities of a prompt share a noun and every DSG question names what it is about; its size is
its attribute and its `check` ({"shape", "colour", "count", "size" when said}) is what a programmatic checker
reads (`selma.shapes.checker`). `shapes_counting`, `shapes_spatial` and `shapes_colour` draw the spec of each
skill; `selma.shapes.world` captions its scenes with `describe` too, so the world and its prompts agree.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from ..template_vocab import ShapesWords, vocab
from .english import cap, plural, with_article
from .scene import Scene

# Room an object needs (its box plus the gap around it, as a share of the frame), by size: a spec whose objects
# need more than MAX_LOAD cannot be laid out reliably (selma.shapes.world uses the same numbers).
HALF_EXTENT = {"small": 0.10, "large": 0.16}
GAP = 0.05
FRAME = 0.03  # between any box and the edge of the frame
MAX_LOAD = 0.56
_SLACK = 0.1  # room a chain of relations along one axis keeps free, so that random placement finds a layout
MAX_GRAMMAR_COUNT = 3  # counts the grammars draw (captions of drawn scenes may say more)


def words() -> ShapesWords:
    return vocab().shapes


def load(spec: Mapping) -> float:
    """The room the spec's objects need; an unsaid size counts as small (the layout may still draw large)."""
    return sum(g["count"] * (2 * HALF_EXTENT[g.get("size") or "small"] + GAP) ** 2 for g in spec["groups"])


def fits(spec: Mapping) -> bool:
    """Whether the spec's objects (unsaid sizes as small) fit the frame: their load, and every chain of relations
    along one axis ('A left of B, C left of A') with the gaps between its boxes."""
    if load(spec) > MAX_LOAD:
        return False
    sides = [2 * HALF_EXTENT[g.get("size") or "small"] for g in spec["groups"]]
    for axis in (("left", "right"), ("above", "below")):
        after = {i: set() for i in range(len(sides))}  # i -> the groups that lie after i along the axis
        for r in spec.get("relations", ()):
            direction = words().relations[r["relation"]]
            if direction in axis:
                first, second = (r["subject"], r["object"]) if direction == axis[0] else (r["object"], r["subject"])
                after[first].add(second)

        def span(i: int, depth: int = 0, after: dict = after) -> float:
            if depth > len(sides):
                return float("inf")  # a cycle: A left of B left of A
            return sides[i] + max((GAP + span(j, depth + 1) for j in after[i]), default=0.0)

        if max(span(i) for i in after) > 1 - 2 * FRAME - _SLACK:
            return False
    return True


def noun(group: Mapping) -> str:
    return f"{group['colour']} {group['shape']}"


def count_word(count: int) -> str:
    return words().count_words[count - 1]


def noun_phrase(group: Mapping) -> str:
    """'a small red circle', 'two blue squares'."""
    head = " ".join(w for w in (group.get("size"), noun(group)) if w)
    return with_article(head) if group["count"] == 1 else f"{count_word(group['count'])} {plural(head)}"


def check_spec(spec: Mapping) -> None:
    """Raise ValueError unless the spec can be said and checked: known words, distinct groups, single objects in
    relations, each relation between two different groups."""
    w = words()
    groups = spec.get("groups") or ()
    if not groups:
        raise ValueError("a shapes spec needs at least one group")
    for g in groups:
        if g["shape"] not in w.shapes or g["colour"] not in w.colours or g.get("size") not in (None, *w.sizes):
            raise ValueError(f"unknown shape, colour or size in {dict(g)}")
        if not 1 <= g["count"] <= len(w.count_words):
            raise ValueError(f"count {g['count']} is outside 1..{len(w.count_words)}")
    if len({noun(g) for g in groups}) != len(groups):
        raise ValueError("two groups of a spec share a shape and a colour; merge them into one group")
    for r in spec.get("relations", ()):
        a, b = r["subject"], r["object"]
        if r["relation"] not in w.relations or a == b or groups[a]["count"] != 1 or groups[b]["count"] != 1:
            raise ValueError(f"relation {dict(r)} must relate two different single objects by a known phrase")


def scene_of(spec: Mapping) -> dict:
    """The DSG scene a spec's text says: an entity per group (in group order), a relation per relation."""
    check_spec(spec)
    scene = Scene()
    for g in spec["groups"]:
        count = g["count"]
        index = scene.entity(noun(g), g.get("size"), count=count, count_word=count_word(count) if count > 1 else "")
        check = {"shape": g["shape"], "colour": g["colour"], "count": count}
        scene.entities[index]["check"] = {**check, **({"size": g["size"]} if g.get("size") else {})}
    for r in spec.get("relations", ()):
        scene.relate(r["subject"], r["relation"], r["object"])
    return scene.to_json()


def describe(spec: Mapping, rng: random.Random) -> tuple[str, dict]:
    """The prompt that says the spec, worded by `rng` (opener, verb, joiners, ending), and its scene. Related
    groups come first, each relation as 'A <relation> B' ('the B' once B was named), then the other groups."""
    w, scene = words(), scene_of(spec)
    groups, relations = spec["groups"], spec.get("relations", ())
    named: set[int] = set()

    def phrase(index: int) -> str:
        if index in named:
            return f"the {noun(groups[index])}"
        named.add(index)
        return noun_phrase(groups[index])

    opener = rng.choice(w.openers)
    clauses = []
    for r in relations:
        verb = rng.choice(w.verbs) if not clauses and not opener else ""
        clauses.append(" ".join(x for x in (phrase(r["subject"]), verb, r["relation"], phrase(r["object"])) if x))
    rest = [phrase(i) for i in range(len(groups)) if i not in named]
    if relations:
        text = clauses[0] + "".join(f"{rng.choice(w.joiners)} {c}" for c in clauses[1:] + rest)
    else:
        if not opener and rng.random() < 0.25:
            opener = "There are" if groups[0]["count"] > 1 else "There is"
        text = rest[0] if len(rest) == 1 else ", ".join(rest[:-1]) + " and " + rest[-1]
    text = f"{opener} {text}" if opener else text
    return cap(text + rng.choice(w.endings)) + ".", scene


# --- the three skills' specs -------------------------------------------------------------------------------------
def _pairs(rng: random.Random, n: int, *, distinct_colours: bool = False) -> list[tuple[str, str]]:
    """n different (shape, colour) pairs; with `distinct_colours`, n different colours too."""
    w = words()
    if distinct_colours:
        return [(rng.choice(w.shapes), c) for c in rng.sample(list(w.colours), n)]
    return rng.sample([(s, c) for s in w.shapes for c in w.colours], n)


def _groups(rng: random.Random, pairs: Sequence[tuple[str, str]], counts: Sequence[int], p_size: float) -> list:
    w = words()
    return [
        {"shape": s, "colour": c, "size": rng.choice(w.sizes) if rng.random() < p_size else None, "count": n}
        for (s, c), n in zip(pairs, counts, strict=True)
    ]


def _fitted(spec: dict) -> dict:
    """The spec with stated sizes dropped (last group first) until its objects fit the frame."""
    for g in reversed(spec["groups"]):
        if fits(spec):
            break
        g["size"] = None
    return spec


def shapes_counting(rng: random.Random, word_limit: int) -> tuple[str, dict]:
    """One to three groups, at least one of two or three objects: 'Two red circles and a small blue square.'"""
    n = rng.choice((1, 2, 2, 3))
    counts = [rng.choice((1, 2, 3)) for _ in range(n)]
    if max(counts) < 2:
        counts[rng.randrange(n)] = rng.randint(2, MAX_GRAMMAR_COUNT)
    while sum(counts) > 6:
        counts[counts.index(max(counts))] -= 1
    spec = {"groups": _groups(rng, _pairs(rng, n), counts, 0.4)}
    return describe(_fitted(spec), rng)


def shapes_spatial(rng: random.Random, word_limit: int) -> tuple[str, dict]:
    """Two single objects and where one is from the other, sometimes a third placed from one of them: 'A green
    triangle to the left of a yellow circle.'"""
    n = rng.choice((2, 2, 3))
    groups = _groups(rng, _pairs(rng, n), [1] * n, 0.5)
    phrases = list(words().relations)
    relations = [{"subject": 0, "relation": rng.choice(phrases), "object": 1}]
    if n == 3:
        relations.append({"subject": 2, "relation": rng.choice(phrases), "object": rng.randrange(2)})
    return describe(_fitted({"groups": groups, "relations": relations}), rng)


def shapes_colour(rng: random.Random, word_limit: int) -> tuple[str, dict]:
    """Two or three objects, each in its own colour (shapes may repeat): 'A red circle and a blue circle.'"""
    n = rng.choice((2, 3))
    groups = _groups(rng, _pairs(rng, n, distinct_colours=True), [1] * n, 0.5)
    return describe({"groups": groups}, rng)
