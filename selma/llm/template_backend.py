"""The offline prompt writer: a compositional grammar per skill family, used when no LLM is configured.

Each grammar is a function `(rng, word_limit) -> str` that fills several independent slots (objects,
attributes, places, relations, modifiers) inside one of several sentence patterns; only `paragraph`
uses the word limit to decide how much to say, the others are short and are redrawn if too long. Many independent
slots matter more than big vocabularies: SELMA's ROUGE-L filter rejects a prompt whose longest common
subsequence with any kept prompt covers more than 80% of its words, so two prompts must differ in more
than one short slot to both survive. Vocabularies live in `template_vocab.py`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from . import template_vocab as V
from .base import LLMConfig, LLMRequest

_TRIES_PER_PROMPT = 200
_ONE_TWO_THREE = ("one", "two", "three")
_PREPOSITIONS = ("in", "on", "at", "by", "beside", "under", "next", "near", "along", "above", "outside", "inside")


# --- English helpers ---------------------------------------------------------------------------------------------
def plural(noun: str) -> str:
    """Plural of a (possibly multi-word) noun: 'goose' -> 'geese', 'teddy bear' -> 'teddy bears'."""
    if " of " in noun:  # 'loaf of bread' -> 'loaves of bread'
        head, rest = noun.split(" of ", 1)
        return f"{plural(head)} of {rest}"
    *front, last = noun.split(" ")
    if last in V.IRREGULAR_PLURALS:
        last = V.IRREGULAR_PLURALS[last]
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


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _is_plural_phrase(phrase: str) -> bool:
    """Rough number of a noun phrase, for 'there is/are': 'a few boxes' and 'rocks' are plural."""
    if phrase.startswith(("a few ", "some ", "two ", "three ")):
        return True
    if phrase.startswith(("a ", "an ", "the ")):
        return False
    head = phrase
    for cut in (" on ", " with ", " in ", " of ", " flying"):
        head = head.split(cut, 1)[0]
    return head.endswith("s")


def _be(phrase: str) -> str:
    return "are" if _is_plural_phrase(phrase) else "is"


def _maybe(rng: random.Random, p: float, text: str) -> str:
    return text if rng.random() < p else ""


# --- counting ----------------------------------------------------------------------------------------------------
def _counted(rng: random.Random, count: str, noun: str, adjectives: Sequence[str]) -> str:
    adj = rng.choice(adjectives) + " " if rng.random() < 0.8 else ""
    return f"{count} {adj}{noun if count == 'one' else plural(noun)}"


def counting(rng: random.Random, word_limit: int) -> str:
    """CountBench-style: one, two or three of a thing (or two such groups), with a scene around them."""
    cat = V.COUNT_CATEGORIES[rng.choice(list(V.COUNT_CATEGORIES))]
    count = rng.choice(_ONE_TWO_THREE)
    noun, noun2 = rng.sample(cat["nouns"], 2)
    np = _counted(rng, count, noun, cat["adjectives"])
    place, be = rng.choice(cat["places"]), "is" if count == "one" else "are"
    action = rng.choice(cat["actions"]) + " " if "actions" in cat else ""
    extra = _maybe(rng, 0.5, ", " + rng.choice(V.LIGHT_EXTRAS))
    pattern = rng.randrange(7)
    if pattern == 0:
        return f"{_cap(np)} {action}{place}{extra}."
    if pattern == 1:
        return f"{rng.choice(V.COUNT_OPENERS)} {np} {action}{place}{extra}."
    if pattern == 2:
        return f"There {be} {np} {action}{place}{extra}."
    if pattern == 3:
        if action:
            return f"{_cap(place)}, {np} {be} {action.strip()}{extra}."
        return f"{_cap(place)}, there {be} {np}{extra}."
    if pattern == 4:
        np2 = _counted(rng, rng.choice(_ONE_TWO_THREE), noun2, cat["adjectives"])
        return f"{_cap(np)} and {np2} {place}{extra}."
    if pattern == 5:
        return f"Exactly {np} {action}{place}{extra}."
    np2 = _counted(rng, rng.choice(_ONE_TWO_THREE), noun2, cat["adjectives"])
    return f"{_cap(np)} {action}{place}, with {np2} nearby."


# --- spatial -----------------------------------------------------------------------------------------------------
def _describe(rng: random.Random, noun: str, used: set[str], p_adjective: float = 0.8) -> str:
    """'a red ceramic mug': an article, at most two fitting adjectives not yet `used` in the prompt, the noun."""
    if rng.random() >= p_adjective:
        return with_article(noun)
    if noun in V.FIXED_ADJECTIVES:
        options = [(a,) for a in V.FIXED_ADJECTIVES[noun]]
    elif noun in V.ANIMAL_THINGS:
        options = [(a,) for a in V.ANIMAL_COLOURS]
    else:
        colour = rng.choice(V.COLOURS)
        options = [(colour,)] + [(m,) for m in V.THINGS.get(noun, ())] + [(colour, m) for m in V.THINGS.get(noun, ())]
    options = [o for o in options if used.isdisjoint(" ".join(o).split())]
    if not options:
        return with_article(noun)
    adjectives = rng.choice(options)
    used.update(" ".join(adjectives).split())
    return with_article(" ".join((*adjectives, noun)))


def _relation(rng: random.Random, scene: dict) -> tuple[str, str, str]:
    """(subject noun, relation, object noun), with vertical relations only where they are physical."""
    kinds = ["lateral"] * 5 + ["on"] * 2
    kinds += ["under"] if scene["covers"] else []
    kinds += ["above"] if scene.get("hangers") else []
    while True:
        kind = rng.choice(kinds)
        if kind == "on":
            a, b = rng.choice(scene["smalls"]), rng.choice(scene["supports"])
            animal = a in V.ANIMAL_THINGS
            rel = rng.choice(("sitting on", "lying on", "on top of") if animal else V.SPATIAL_ON[:3])
        elif kind == "under":
            a, b = rng.choice(scene["smalls"]), rng.choice(scene["covers"])
            rel = rng.choice(("hiding under", "sitting under", "under") if a in V.ANIMAL_THINGS else V.SPATIAL_UNDER)
        elif kind == "above":
            a, b = rng.choice(scene["hangers"]), rng.choice(scene["hang_over"])
            rel = rng.choice(V.SPATIAL_ABOVE)
        else:
            a, b = rng.sample(scene["objects"], 2)
            rel = rng.choice(V.SPATIAL_LATERAL)
        if a != b:  # a towel on a towel
            return a, rel, b


def spatial(rng: random.Random, word_limit: int) -> str:
    """Two or three objects placed by explicit relations: left of, behind, on top of, under, above."""
    scene = V.SPATIAL_SCENES[rng.choice(list(V.SPATIAL_SCENES))]
    where = rng.choice(scene["where"])
    a, rel, b = _relation(rng, scene)
    others = [n for n in scene["objects"] if n not in (a, b)]
    c = rng.choice(others)
    used: set[str] = set()
    A, B, C = _describe(rng, a, used), _describe(rng, b, used), _describe(rng, c, used)
    rel2 = rng.choice(V.SPATIAL_LATERAL)
    pattern = rng.randrange(7)
    if pattern == 0:
        return f"{_cap(A)} {rel} {B} {where}."
    if pattern == 1:
        return f"{_cap(where)}, {A} is {rel} {B}."
    if pattern == 2:
        return f"{_cap(A)} {rel} {B} {where}, with {C} {rel2} the {b}."
    if pattern in (3, 4):
        used.clear()
        x, y, z = (_describe(rng, n, used) for n in rng.sample(scene["objects"], 3))
        if pattern == 3:
            return f"{_cap(x)} between {y} and {z} {where}."
        return f"{_cap(where)}: {x} on the left, {y} in the middle and {z} on the right."
    if pattern == 5:
        return f"{_cap(A)} {rel} {B}, while {C} is {rel2} the {a}, {where}."
    return f"{rng.choice(V.COUNT_OPENERS)} {A} {rel} {B} {where}."


# --- attribute binding -------------------------------------------------------------------------------------------
class _Attributes:
    """Hands out attribute words so that no two objects of one prompt share a colour, material or shape."""

    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()

    def _fresh(self, options: Sequence[str]) -> str | None:
        """A word (or phrase) sharing no word with those already handed out: 'black and white' blocks 'black'."""
        free = [o for o in options if self.used.isdisjoint(o.split())]
        if not free:
            return None
        word = self.rng.choice(free)
        self.used.update(word.split())
        return word

    def thing(self, noun: str) -> str:
        """'a round blue ceramic vase' -> shape, colour, material in English adjective order."""
        rng = self.rng
        if noun not in V.THINGS:
            if noun in V.FIXED_ADJECTIVES:
                options = V.FIXED_ADJECTIVES[noun]
            else:
                options = V.ANIMAL_COLOURS if noun in V.ANIMAL_THINGS else V.COLOURS
            return with_article(f"{self._fresh(options) or ''} {noun}".strip())
        kinds = ["colour"]
        kinds += ["material"] if V.THINGS[noun] else []
        kinds += ["shape"] if noun in V.SHAPED else []
        chosen = set(rng.sample(kinds, rng.randint(1, min(2, len(kinds)))))
        words = [
            self._fresh(V.SHAPES) if "shape" in chosen else None,
            self._fresh(V.COLOURS) if "colour" in chosen else None,
            self._fresh(V.THINGS[noun]) if "material" in chosen else None,
        ]
        return with_article(" ".join([w for w in words if w] + [noun]))

    def animal(self, noun: str) -> str:
        """'a black dog with a red collar'."""
        accessory = f"{self._fresh(V.COLOURS)} {self.rng.choice(V.ANIMAL_ACCESSORIES[noun])}"
        return f"{with_article(f'{self._fresh(V.ANIMAL_COLOURS)} {noun}')} with {with_article(accessory)}"

    def garment(self, name: str) -> str:
        colour = self._fresh(V.COLOURS)
        material = self._fresh(V.GARMENTS[name]) if V.GARMENTS[name] and self.rng.random() < 0.5 else None
        phrase = " ".join(w for w in (colour, material, name) if w)
        return phrase if name in V.PLURAL_GARMENTS else with_article(phrase)


def attribute(rng: random.Random, word_limit: int) -> str:
    """Several objects, each with its own colour / material / shape, which a model must not mix up."""
    attrs = _Attributes(rng)
    pattern = rng.randrange(7)
    if pattern == 5:
        person, held = rng.choice(V.ATTR_PEOPLE), attrs.thing(rng.choice(V.HELD_THINGS))
        feminine = "woman" in person or "girl" in person
        g1, g2 = rng.sample([g for g in V.GARMENTS if feminine or g not in V.FEMININE_GARMENTS], 2)
        return f"{_cap(person)} wearing {attrs.garment(g1)} and {attrs.garment(g2)}, holding {held}."
    if pattern == 6:
        a, b = rng.sample(list(V.ANIMAL_ACCESSORIES), 2)
        link = rng.choice(("next to", "beside", "sitting near", "and"))
        return f"{_cap(attrs.animal(a))} {link} {attrs.animal(b)} {rng.choice(V.ATTR_PLACES)}."
    scene = V.SPATIAL_SCENES[rng.choice(list(V.SPATIAL_SCENES))]
    pool = sorted(set(scene["objects"]) | set(scene["smalls"]) | set(scene["supports"]))
    x, y, z = (attrs.thing(n) for n in rng.sample(pool, 3))
    where = rng.choice(scene["where"])
    if pattern == 0:
        return f"{_cap(x)} and {y} {where}."
    if pattern == 1:
        return f"{_cap(x)}, {y} and {z} {where}."
    if pattern == 2:
        return f"{_cap(where)}, {x} sits next to {y}."
    if pattern == 3:
        return f"{_cap(x)} on the left and {y} on the right, {where}."
    return f"{rng.choice(V.COUNT_OPENERS)} {x}, {y} and {z} {where}."


# --- text rendering ----------------------------------------------------------------------------------------------
def _text(rng: random.Random, family: str) -> str:
    """A short text to render, fitting the surface ('Rosa's Bakery' on an awning, 'Sugar' on a jar)."""
    if family == "shop":
        kind = rng.choice(V.SHOP_KINDS)
        return rng.choice(
            (
                f"{rng.choice(V.FIRST_NAMES)}'s {kind}",
                f"{rng.choice(V.SHOP_WORDS)} {kind}",
                f"The {rng.choice(V.SHOP_WORDS)}",
            )
        )
    template = rng.choice(V.TEXT_FIXED[family])
    return template.format(
        name=rng.choice(V.FIRST_NAMES),
        town=rng.choice(V.TOWNS),
        adj=rng.choice(V.TITLE_ADJECTIVES),
        noun=rng.choice(V.TITLE_NOUNS),
    )


def text(rng: random.Random, word_limit: int) -> str:
    """A sign, shirt, cake, book cover... showing one short quoted text."""
    surface, mode, family, contexts = rng.choice(V.TEXT_SURFACES)
    surface = surface.format(
        c=rng.choice(V.TEXT_SURFACE_COLOURS), w=rng.choice(V.TEXT_SURFACE_WEAR), f=rng.choice(V.TEXT_FLAVOURS)
    )
    surface = with_article(surface.split(" ", 1)[1])  # the filled-in adjective may need 'an'
    shown = rng.choice(V.TEXT_MODES[mode]).format(q=f'"{_text(rng, family)}"')
    if shown.endswith('"') and mode in V.TEXT_STYLES and rng.random() < 0.6:
        shown += " " + rng.choice(V.TEXT_STYLES[mode])
    context = rng.choice(contexts)
    extra = _maybe(rng, 0.85, ", " + rng.choice(V.LIGHT_EXTRAS))
    pattern = rng.randrange(4)
    if pattern == 0:
        return f"{_cap(surface)} {shown}, {context}{extra}."
    if pattern == 1:
        return f"{rng.choice(V.TEXT_SHOTS)} {surface} {shown}, {context}{extra}."
    if pattern == 2 and context.split(" ", 1)[0] in _PREPOSITIONS:
        return f"{_cap(context)}, {surface} {shown}{extra}."
    return f"{_cap(surface)} {context}, {shown}{extra}."


# --- everyday (COCO-style) ---------------------------------------------------------------------------------------
# Activity groups are drawn in proportion to the scenes they can make, so small groups do not repeat.
_ACTIVITY_WEIGHTS = [len(acts) * len(places) for acts, places, _ in V.EVERYDAY_ACTIVITIES]


def _people_scene(rng: random.Random) -> str:
    subject = rng.choice(V.EVERYDAY_PEOPLE)
    several = subject.startswith(("two ", "a group", "a couple", "a family", "a man and", "an elderly couple"))
    if not several and rng.random() < 0.5:
        subject += f" in {with_article(rng.choice(V.COLOURS) + ' ' + rng.choice(V.EVERYDAY_CLOTHES))}"
    activities, places, setting = rng.choices(V.EVERYDAY_ACTIVITIES, weights=_ACTIVITY_WEIGHTS)[0]
    act, place = rng.choice(activities), rng.choice(places)
    extras = V.EVERYDAY_NEUTRAL if setting == "indoor" else V.EVERYDAY_EXTRAS + V.EVERYDAY_CROWDS
    extra = _maybe(rng, 0.7, " " + rng.choice(extras))
    if rng.random() < 0.3:
        return f"{_cap(subject)} {'are' if several else 'is'} {act} {place}{extra}."
    return f"{_cap(subject)} {act} {place}{extra}."


def _animal_scene(rng: random.Random) -> str:
    name = rng.choice(("pets", "farm", "wildlife", "savanna", "waterbirds"))
    cat = V.COUNT_CATEGORIES[name]
    noun, adj = rng.choice(cat["nouns"]), rng.choice(cat["adjectives"])
    action, place = rng.choice(cat["actions"]), rng.choice(cat["places"])
    extra = _maybe(rng, 0.75, " " + rng.choice(V.EVERYDAY_NEUTRAL if name == "pets" else V.EVERYDAY_EXTRAS))
    friend = rng.choice([n for n in cat["nouns"] if n != noun])
    company = _maybe(rng, 0.4, f" next to {with_article(rng.choice(cat['adjectives']) + ' ' + friend)}")
    if name in V.EVERYDAY_GROUPS and rng.random() < 0.4:
        return f"{rng.choice(V.EVERYDAY_GROUPS[name])} {adj} {plural(noun)} {action} {place}{extra}."
    return f"{_cap(with_article(adj + ' ' + noun))} {action} {place}{company}{extra}."


def _food_scene(rng: random.Random) -> str:
    container, main = rng.choice(V.FOOD_CONTAINERS), rng.choice(V.FOOD_MAINS)
    side, side2 = rng.sample(V.FOOD_SIDES, 2)
    context = rng.choice(V.FOOD_CONTEXTS)
    if rng.random() < 0.5:
        return f"{container} with {main}, {side} and {side2} {context}."
    return f"{container} holding {main} and {side} {context}."


def _room_scene(rng: random.Random) -> str:
    room = rng.choice(list(V.ROOMS))
    f1, f2, f3 = rng.sample(V.ROOMS[room], 3)
    head = with_article(f"{rng.choice(V.ROOM_ADJECTIVES)} {room}")
    extra = _maybe(rng, 0.8, ", " + rng.choice(V.ROOM_EXTRAS))
    if rng.random() < 0.5:
        return f"{_cap(head)} with {f1}, {f2} and {f3}{extra}."
    return f"{_cap(head)} that has {f1} and {f2} next to {f3}{extra}."


def _vehicle_scene(rng: random.Random) -> str:
    kind = rng.randrange(3)
    extra = _maybe(rng, 0.7, " " + rng.choice(V.EVERYDAY_EXTRAS))
    if kind == 0:
        train = with_article(f"{rng.choice(V.TRAIN_COLOURS)} {rng.choice(V.TRAIN_KINDS)}")
        return f"{_cap(train)} {rng.choice(V.TRAIN_ACTIONS)}{extra}."
    if kind == 1:
        plane = with_article(f"{rng.choice(V.PLANE_COLOURS)} {rng.choice(V.PLANE_KINDS)}")
        return f"{_cap(plane)} {rng.choice(V.PLANE_ACTIONS)}{extra}."
    cat = V.COUNT_CATEGORIES[rng.choice(("vehicles", "boats"))]
    thing = with_article(f"{rng.choice(cat['adjectives'])} {rng.choice(cat['nouns'])}")
    return f"{_cap(thing)} {rng.choice(cat['actions'])} {rng.choice(cat['places'])}{extra}."


def everyday(rng: random.Random, word_limit: int) -> str:
    """A short COCO-style caption of an ordinary scene."""
    scene = rng.choice((_people_scene,) * 4 + (_animal_scene,) * 2 + (_food_scene, _room_scene, _vehicle_scene))
    return scene(rng)


# --- whoops (commonsense-defying) --------------------------------------------------------------------------------
def _moody(rng: random.Random, creature: str) -> str:
    """'a penguin' -> 'a sunburned penguin' half of the time."""
    if rng.random() < 0.5:
        return creature
    return with_article(f"{rng.choice(V.WHOOPS_MOODS)} {creature.split(' ', 1)[1]}")


def _wrong_habitat(rng: random.Random) -> str:
    creature, home = rng.choice(V.WHOOPS_CREATURES)
    place = rng.choice(V.WHOOPS_PLACES[rng.choice(V.WHOOPS_CLASHES[home])])
    return f"{_moody(rng, creature)} {rng.choice(V.WHOOPS_HABITS)} {place}"


def _animal_at_work(rng: random.Random) -> str:
    job, places = rng.choice(V.WHOOPS_JOBS)
    attire = _maybe(rng, 0.6, " " + rng.choice(V.WHOOPS_ATTIRE))
    return f"{_moody(rng, rng.choice(V.WHOOPS_WORKERS))}{attire} {job} {rng.choice(places)}"


def _wrong_physics(rng: random.Random) -> str:
    thing, state = rng.choice(
        ((V.WHOOPS_HOT_THINGS, V.WHOOPS_UNDERWATER), (V.WHOOPS_COLD_THINGS, V.WHOOPS_HEAT),
         (V.WHOOPS_HEAVY, V.WHOOPS_FLOAT))
    )  # fmt: skip
    return f"{rng.choice(thing)} {rng.choice(state)}"


def _wrong_scale(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"{rng.choice(V.WHOOPS_TINY)} {rng.choice(V.WHOOPS_TINY_SPOTS)}"
    return f"{rng.choice(V.WHOOPS_GIANT)} {rng.choice(V.WHOOPS_GIANT_SPOTS)}"


def _wrong_material(rng: random.Random) -> str:
    return f"{rng.choice(V.WHOOPS_OBJECTS)} {rng.choice(V.WHOOPS_MATERIALS)} {rng.choice(V.WHOOPS_SETTINGS)}"


def _wrong_era(rng: random.Random) -> str:
    person, places = rng.choice(V.WHOOPS_ERAS)
    return f"{person} {rng.choice(V.WHOOPS_GADGETS)} {rng.choice(places)}"


def _role_reversal(rng: random.Random) -> str:
    prey, predator = rng.choice(V.WHOOPS_PREY)
    act = rng.choice(V.WHOOPS_REVERSALS).format(p=predator)
    return f"{prey} {act} {rng.choice(V.WHOOPS_REVERSAL_PLACES)}"


def _wrong_tool(rng: random.Random) -> str:
    person, pos = rng.choice(V.WHOOPS_PEOPLE)
    task = rng.choice(V.WHOOPS_TASKS).format(pos=pos)
    return f"{_moody(rng, person)} {task} with {rng.choice(V.WHOOPS_WRONG_TOOLS)}"


# Families are drawn roughly in proportion to how many distinct scenes each can write, so the small
# ones (a few dozen physics combinations) do not repeat themselves.
_WHOOPS_FAMILIES = (
    (_wrong_habitat, 6), (_animal_at_work, 5), (_wrong_physics, 2), (_wrong_scale, 2),
    (_wrong_material, 4), (_wrong_era, 2), (_role_reversal, 2), (_wrong_tool, 4),
)  # fmt: skip


def whoops(rng: random.Random, word_limit: int) -> str:
    """A scene that breaks common sense on purpose: wrong habitat, wrong scale, wrong era, wrong physics."""
    family = rng.choices([f for f, _ in _WHOOPS_FAMILIES], weights=[w for _, w in _WHOOPS_FAMILIES])[0]
    witness = _maybe(rng, 0.8, ", " + rng.choice(V.WHOOPS_WITNESSES))
    shot = _maybe(rng, 0.5, ", " + rng.choice(V.WHOOPS_SHOTS))
    return f"{_cap(family(rng))}{witness}{shot}."


# --- art (DiffusionDB-style) -------------------------------------------------------------------------------------
_ART_MODIFIERS = (V.ART_MEDIA, V.ART_LIGHTING, V.ART_DETAIL, V.ART_PALETTE, V.ART_COMPOSITION, V.ART_MOOD)


def art(rng: random.Random, word_limit: int) -> str:
    """A subject in a setting, then comma-separated medium, lighting, detail, palette... modifiers."""
    if rng.random() < 0.55:
        subject = rng.choice(V.ART_BEINGS) + _maybe(rng, 0.5, " " + rng.choice(V.ART_BEING_ACTIONS))
        lead = rng.choice(V.ART_LEADS)
    else:
        subject = rng.choice(V.ART_THINGS)
        lead = rng.choice([lead for lead in V.ART_LEADS if lead != "portrait of "])
    subject = lead + subject + _maybe(rng, 0.85, " " + rng.choice(V.ART_SETTINGS))
    subject += _maybe(rng, 0.3, " " + rng.choice(V.ART_TIMES))
    groups = rng.sample(_ART_MODIFIERS[1:], rng.randint(2, 4))
    modifiers = [rng.choice(V.ART_MEDIA)] + [rng.choice(g) for g in groups]
    if rng.random() < 0.4:
        modifiers.append(rng.choice([d for d in V.ART_DETAIL if d not in modifiers]))
    return ", ".join([subject, *modifiers])


# --- paragraph (Localized-Narratives-style) ----------------------------------------------------------------------
def _person_sentence(rng: random.Random, subject: str, pronoun: str, scene: dict) -> str:
    """What the main person wears, has or holds; a beard or a dress only where they fit the subject."""
    woman = pronoun == "she"
    top = rng.choice([g for g in V.PARA_TOPS if woman or g not in V.FEMININE_GARMENTS])
    other = rng.choice([g for g in V.PARA_OTHER_CLOTHES if woman or g not in V.FEMININE_GARMENTS])
    hair = [h for h in V.PARA_HAIR if h != "a beard" or subject in V.PARA_BEARDED]
    colours, garments = rng.sample(V.PARA_COLOURS, 2), (top, other)
    c1, c2 = (f"{colour} {garment}" for colour, garment in zip(colours, garments, strict=True))
    c1, c2 = (c if c.split()[-1] in V.PARA_PLURAL_CLOTHES else with_article(c) for c in (c1, c2))
    return rng.choice(V.PARA_PERSON).format(
        P=_cap(pronoun), c1=c1, c2=c2, h=rng.choice(scene["held"]), hair=rng.choice(hair)
    )


def paragraph(rng: random.Random, word_limit: int) -> str:
    """A long description told region by region: who is where, then the sides, the background, top, bottom."""
    scene = V.PARA_SCENES[rng.choice(list(V.PARA_SCENES))]
    subject, pronoun = rng.choice(V.PARA_PEOPLE)
    obj = {"he": "him", "she": "her"}.get(pronoun, pronoun)
    action = rng.choice(scene["actions"])
    place = rng.choice([p for p in scene["places"] if p.split()[-1] not in action.split()] or scene["places"])
    opener = rng.choice(V.PARA_OPENERS).format(s=subject, a=action, p=place, t=scene["taken"])
    named = set(opener.lower().rstrip(".").split())
    side_items = rng.sample([x for x in scene["side"] if x.split()[-1] not in named], 6)
    sides = rng.sample(("left", "right"), 2)
    candidates = [_person_sentence(rng, subject, pronoun, scene)]
    for side, items in zip(sides, (side_items[:3], side_items[3:]), strict=True):
        x, y, z = items
        candidates.append(rng.choice(V.PARA_SIDE).format(side=side, x=x, y=y, z=z, o=obj, be=_be(x)))
    x, y, z = rng.sample(scene["background"], 3)
    candidates.append(rng.choice(V.PARA_BACK).format(x=x, y=y, z=z, o=obj))
    for region, templates in (("top", V.PARA_TOP), ("bottom", V.PARA_BOTTOM)):
        x = rng.choice(scene[region])
        candidates.append(rng.choice(templates).format(x=x, be=_be(x)))
    rng.shuffle(candidates)
    sentences, words = [opener], len(opener.split())
    for sentence in candidates:
        n = len(sentence.split())
        if words + n <= word_limit:
            sentences.append(sentence)
            words += n
    return " ".join(sentences)


GRAMMARS: dict[str, Callable[[random.Random, int], str]] = {
    "counting": counting,
    "spatial": spatial,
    "text": text,
    "attribute": attribute,
    "everyday": everyday,
    "paragraph": paragraph,
    "art": art,
    "whoops": whoops,
}


def generate_prompts(
    grammar: str, num_prompts: int, word_limit: int, seed: int, avoid: Sequence[str] = ()
) -> list[str]:
    """`num_prompts` distinct prompts of one grammar, each within `word_limit` words; same seed, same list."""
    if grammar not in GRAMMARS:
        raise ValueError(f"template grammar {grammar!r} is not known; use one of {', '.join(GRAMMARS)}")
    write, rng = GRAMMARS[grammar], random.Random(seed)
    prompts: list[str] = []
    seen = set(avoid)
    for _ in range(max(num_prompts, 1) * _TRIES_PER_PROMPT):
        if len(prompts) >= num_prompts:
            break
        prompt = write(rng, word_limit)
        if len(prompt.split()) <= word_limit and prompt not in seen:
            seen.add(prompt)
            prompts.append(prompt)
    if len(prompts) < num_prompts:
        raise ValueError(
            f"the {grammar!r} template grammar wrote only {len(prompts)} of {num_prompts} prompts within "
            f"word_limit={word_limit}; raise the skill's word_limit or use an LLM backend"
        )
    return prompts


class TemplateBackend:
    """Offline, deterministic LLM stand-in: answers a request with a numbered list from the skill's grammar."""

    def __init__(self, config: LLMConfig):
        self.config = config
        self.label = config.label

    def complete(self, request: LLMRequest) -> str:
        prompts = generate_prompts(
            request.skill.grammar, request.num_prompts, request.skill.word_limit, request.seed, request.examples
        )
        return "\n".join(f"{i}. {p}" for i, p in enumerate(prompts, 1))

    def close(self) -> None:
        pass
