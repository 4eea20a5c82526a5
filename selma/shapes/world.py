"""The shapes world: flat circles, squares and triangles in a few colours and two sizes on a plain light
background, drawn without anti-aliasing, so that whether a picture shows its prompt can be checked exactly.

    scene = random_scene(random.Random(0), max_objects=3)
    image = render(scene, size=64)                 # PIL image, flat colours
    text, dsg = caption_scene(scene, random.Random(1))  # 'Two red circles and a small blue square.', its scene

Coordinates are shares of the frame, y pointing down; an object's (x, y) is the centre of its box, whose half
side is `HALF_EXTENT[size]`. Objects never overlap: any two boxes are apart by `GAP` along x or along y, and
every box keeps `FRAME` from the edges. The words (shapes, colours, sizes, relation phrases) live in
`selma/llm/vocab/shapes.json` and the wording in `selma.llm.grammars.shapes`, so a caption here and a prompt of
the `shapes_*` grammars are the same language: `spec_of` turns a scene into the structured spec those grammars
say (`scene_for_prompt`), `layout` draws a scene that shows a spec (to render a grammar's prompt).

Relations are read from boxes (`relation_holds`): A is to the left of B when A's centre is left of B's box and
B's centre right of A's box (likewise above/below); captions state a relation only when the two boxes are apart
by `GAP` along that axis, so it is clear in any rendering.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from ..llm.grammars.shapes import FRAME, GAP, HALF_EXTENT, MAX_LOAD, check_spec, describe, fits
from ..llm.template_vocab import vocab


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


_WORDS = vocab().shapes
SHAPES: tuple[str, ...] = tuple(_WORDS.shapes)
COLOURS: dict[str, tuple[int, int, int]] = {name: _rgb(value) for name, value in _WORDS.colours.items()}
SIZES: tuple[str, ...] = tuple(_WORDS.sizes)
BACKGROUND: tuple[int, int, int] = _rgb(_WORDS.background)
RELATIONS: dict[str, str] = dict(_WORDS.relations)  # phrase -> "left", "right", "above" or "below"
_TRIES = 4000


@dataclass(frozen=True)
class ShapeObject:
    shape: str
    colour: str
    size: str
    x: float  # centre, 0..1 from the left
    y: float  # centre, 0..1 from the top

    def __post_init__(self) -> None:
        if self.shape not in SHAPES or self.colour not in COLOURS or self.size not in SIZES:
            raise ValueError(f"unknown shape, colour or size: {self}; use {SHAPES}, {tuple(COLOURS)}, {SIZES}")
        if not (0.0 <= self.x <= 1.0 and 0.0 <= self.y <= 1.0):
            raise ValueError(f"{self}: x and y are shares of the frame, 0..1")

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) as shares of the frame."""
        h = HALF_EXTENT[self.size]
        return self.x - h, self.y - h, self.x + h, self.y + h


@dataclass(frozen=True)
class Scene:
    objects: tuple[ShapeObject, ...]

    def to_json(self) -> dict:
        return {"objects": [asdict(o) for o in self.objects]}

    @classmethod
    def from_json(cls, data: Mapping) -> Scene:
        return cls(tuple(ShapeObject(**o) for o in data["objects"]))


Box = tuple[float, float, float, float]


def relation_holds(a: Box, b: Box, direction: str) -> bool:
    """Whether box `a` is `direction` ('left', 'right', 'above', 'below') of box `b`."""
    if direction in ("right", "below"):
        a, b = b, a
    axis = 0 if direction in ("left", "right") else 1
    centre_a, centre_b = (a[axis] + a[axis + 2]) / 2, (b[axis] + b[axis + 2]) / 2
    return centre_a < b[axis] and centre_b > a[axis + 2]


def clear_directions(a: ShapeObject, b: ShapeObject) -> list[str]:
    """The directions in which `a` lies from `b` with a gap of at least `GAP` between their boxes."""
    (l1, t1, r1, b1), (l2, t2, r2, b2) = a.box, b.box
    found = [("left", r1 + GAP <= l2), ("right", r2 + GAP <= l1), ("above", b1 + GAP <= t2), ("below", b2 + GAP <= t1)]
    return [d for d, ok in found if ok]


def _apart(a: ShapeObject, b: ShapeObject) -> bool:
    ha, hb = HALF_EXTENT[a.size], HALF_EXTENT[b.size]
    return abs(a.x - b.x) >= ha + hb + GAP or abs(a.y - b.y) >= ha + hb + GAP


def _place(rng: random.Random, kinds: Sequence[tuple[str, str, str]], ok=lambda objects: True) -> Scene:
    """Objects of the given (shape, colour, size), at random places where none overlaps, and `ok` holds."""
    for _ in range(_TRIES):
        objects: list[ShapeObject] = []
        for shape, colour, size in kinds:
            low, high = HALF_EXTENT[size] + FRAME, 1 - HALF_EXTENT[size] - FRAME
            for _ in range(50):
                new = ShapeObject(
                    shape, colour, size, round(rng.uniform(low, high), 4), round(rng.uniform(low, high), 4)
                )
                if all(_apart(new, o) for o in objects):
                    objects.append(new)
                    break
            else:
                break
        else:
            if ok(objects):
                return Scene(tuple(objects))
    raise ValueError(f"could not place {len(kinds)} objects ({[k[2] for k in kinds]}) without overlap")


def random_scene(
    rng: random.Random,
    *,
    min_objects: int = 1,
    max_objects: int = 4,
    shapes: Sequence[str] = SHAPES,
    colours: Sequence[str] = tuple(COLOURS),
    sizes: Sequence[str] = SIZES,
) -> Scene:
    """1..4 (by default) objects of the given shapes, colours and sizes, none overlapping, all inside the frame."""
    if not 1 <= min_objects <= max_objects <= len(_WORDS.count_words):
        raise ValueError(f"need 1 <= min_objects <= max_objects <= {len(_WORDS.count_words)}")
    for name, given, known in (("shapes", shapes, SHAPES), ("colours", colours, COLOURS), ("sizes", sizes, SIZES)):
        if not given or any(v not in known for v in given):
            raise ValueError(f"{name}={list(given)!r}: choose from {list(known)}")
    n = rng.randint(min_objects, max_objects)
    kinds = [[rng.choice(shapes), rng.choice(colours), rng.choice(sizes)] for _ in range(n)]
    large = [k for k in kinds if k[2] == "large"]
    rng.shuffle(large)
    while sum((2 * HALF_EXTENT[k[2]] + GAP) ** 2 for k in kinds) > MAX_LOAD:
        if not large or "small" not in sizes:
            raise ValueError(
                f"{n} objects of sizes {list(sizes)} do not fit the frame; allow 'small' or fewer objects"
            )
        large.pop()[2] = "small"  # a crowded scene takes small objects
    return _place(rng, [tuple(k) for k in kinds])


def render(scene: Scene, size: int = 64):
    """The scene drawn at size x size pixels: flat palette colours on `BACKGROUND`, no anti-aliasing."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for o in scene.objects:
        left, top, right, bottom = (round(v * size) for v in o.box)
        right, bottom = max(left, right - 1), max(top, bottom - 1)  # inclusive pixel box
        fill = COLOURS[o.colour]
        if o.shape == "circle":
            draw.ellipse((left, top, right, bottom), fill=fill)
        elif o.shape == "square":
            draw.rectangle((left, top, right, bottom), fill=fill)
        else:  # an upright triangle filling its box
            draw.polygon([((left + right) / 2, top), (right, bottom), (left, bottom)], fill=fill)
    return image


# --- scenes <-> the grammar's specs ------------------------------------------------------------------------------
def spec_of(scene: Scene, rng: random.Random, *, p_size: float = 0.5, p_relation: float = 0.6) -> dict:
    """The structured spec a caption of the scene says: one group per shape and colour (its size said with
    probability `p_size` when all its objects share it), and, with probability `p_relation`, a clear relation
    between two single objects (a second one, from a third single object, now and then)."""
    groups: dict[tuple[str, str], list[ShapeObject]] = {}
    for o in scene.objects:
        groups.setdefault((o.shape, o.colour), []).append(o)
    keys = list(groups)
    rng.shuffle(keys)
    spec_groups = []
    for shape, colour in keys:
        members = groups[shape, colour]
        same = len({o.size for o in members}) == 1
        size = members[0].size if same and rng.random() < p_size else None
        spec_groups.append({"shape": shape, "colour": colour, "size": size, "count": len(members)})
    singles = [i for i, k in enumerate(keys) if len(groups[k]) == 1]
    relations: list[dict] = []
    by_direction = {d: [p for p in RELATIONS if RELATIONS[p] == d] for d in set(RELATIONS.values())}

    def relate(subject: int, obj: int) -> bool:
        directions = clear_directions(groups[keys[subject]][0], groups[keys[obj]][0])
        if directions:
            relations.append({"subject": subject, "relation": rng.choice(by_direction[rng.choice(directions)]),
                              "object": obj})  # fmt: skip
        return bool(directions)

    if len(singles) >= 2 and rng.random() < p_relation:
        pairs = [(a, b) for a in singles for b in singles if a != b]
        rng.shuffle(pairs)
        first = next(((a, b) for a, b in pairs if relate(a, b)), None)
        others = [i for i in singles if first and i not in first]
        if first and others and rng.random() < 0.3:
            relate(rng.choice(others), rng.choice(first))
    return {"groups": spec_groups, "relations": relations}


def scene_for_prompt(spec: Mapping, rng: random.Random) -> tuple[str, dict]:
    """The prompt that says a structured spec ({"groups": [...], "relations": [...]}, see
    `selma.llm.grammars.shapes`) and its DSG scene (what `selma.evaluation.questions.scene_questions` reads)."""
    return describe(spec, rng)


def caption_scene(scene: Scene, rng: random.Random) -> tuple[str, dict]:
    """A natural caption of the scene ('Two red circles and a small blue square.') and its DSG scene; everything
    the caption says is true of the scene."""
    return describe(spec_of(scene, rng), rng)


def caption(scene: Scene, rng: random.Random) -> str:
    """`caption_scene(scene, rng)[0]`: the same caption for the same generator state."""
    return caption_scene(scene, rng)[0]


def layout(spec: Mapping, rng: random.Random) -> Scene:
    """A scene that shows exactly the spec: its groups' objects (an unsaid size drawn at random, small where large
    ones would not fit) and every relation clear. Render it to get a picture of a grammar's prompt."""
    check_spec(spec)
    if not fits(spec):
        raise ValueError(f"the objects of {dict(spec)} do not fit the frame; say fewer, or smaller, ones")
    first = [sum(g["count"] for g in spec["groups"][:i]) for i in range(len(spec["groups"]))]
    relations = [
        {**r, "subject": first[r["subject"]], "object": first[r["object"]]} for r in spec.get("relations", ())
    ]
    kinds, free = [], []
    for g in spec["groups"]:
        for _ in range(g["count"]):
            if g.get("size") is None:
                free.append(len(kinds))
            kinds.append([g["shape"], g["colour"], g.get("size") or rng.choice(SIZES)])
    rng.shuffle(free)
    while not fits({"groups": [{"size": k[2], "count": 1} for k in kinds], "relations": relations}):
        kinds[free.pop()][2] = "small"

    def clear(objects: Sequence[ShapeObject]) -> bool:
        return all(RELATIONS[r["relation"]] in clear_directions(objects[r["subject"]], objects[r["object"]])
                   for r in relations)  # fmt: skip

    return _place(rng, [tuple(k) for k in kinds], clear)
