"""Word lists of the offline template grammars, read once from `vocab/*.json` and checked on the way in.

Each JSON file is one object: an optional `"about"` string for readers, then one key per field of the
dataclass below that shares its name (`counting.json` -> `CountingWords`). `vocab()` reads every file
the first time it is called and caches the result. A value that does not fit its field raises a
`VocabError` naming the file and the key path (`counting.json: categories.pets.nouns[3]: ...`).
Lists become tuples and objects become read-only mappings (JSON order kept, since the grammars draw
from them by position), so the cached words cannot be changed by accident.

Words are grouped so that any draw from one group makes sense with any draw from its companions (a
pasture for cows, a windowsill for mugs); each file's `"about"` says how its groups fit together.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, get_args, get_origin, get_type_hints

from ..errors import SelmaError

VOCAB_DIR = Path(__file__).parent / "vocab"

Words = tuple[str, ...]
WordTable = Mapping[str, Words]


class VocabError(SelmaError):
    """A vocabulary file is missing, is not JSON, or holds a value of the wrong shape."""


# --- shared ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EnglishWords:
    irregular_plurals: Mapping[str, str]  # last word of a noun -> its plural


@dataclass(frozen=True)
class PhotoWords:
    openers: Words  # "A photo of"
    light_extras: Words  # "in soft morning light"


@dataclass(frozen=True)
class ObjectWords:
    colours: Words
    animal_colours: Words
    shapes: Words
    materials: WordTable  # thing -> the materials it can sensibly be made of (empty: colour only)
    animal_things: Words  # things that are animals: they take animal colours
    fixed_adjectives: WordTable  # thing -> its own few adjectives, instead of colours and materials
    shaped: Words  # things that can take a shape word


# --- one file per grammar ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CountCategory:
    nouns: Words
    adjectives: Words
    places: Words
    actions: Words = ()  # left out for things that do not act


@dataclass(frozen=True)
class CountingWords:
    categories: Mapping[str, CountCategory]


@dataclass(frozen=True)
class SpatialScene:
    where: Words
    objects: Words  # stand side by side
    smalls: Words  # can sit on a support or hide under a cover
    supports: Words
    covers: Words
    hangers: Words = ()  # can hang above a `hang_over`
    hang_over: Words = ()


@dataclass(frozen=True)
class SpatialWords:
    lateral: Words
    on: Words  # the first three suit things; animals sit or lie
    under: Words
    above: Words
    scenes: Mapping[str, SpatialScene]


@dataclass(frozen=True)
class AttributeWords:
    people: Words
    garments: WordTable  # garment -> its possible materials
    feminine_garments: Words  # only for women and girls
    plural_garments: Words  # take no article
    garment_slots: WordTable  # slot (head, top, feet, ...) -> the garments worn there; two worn must share none
    held_things: Words
    animal_accessories: WordTable
    places: Words


@dataclass(frozen=True)
class TextSurface:
    surface: str  # "a {w} wooden sign": {c} colour, {w} wear word, {f} flavour
    mode: str  # a key of `TextWords.modes`
    family: str  # "shop" or a key of `TextWords.fixed_texts`
    contexts: Words


@dataclass(frozen=True)
class TextWords:
    surfaces: tuple[TextSurface, ...]
    surface_colours: Words
    surface_wear: Words
    flavours: Words
    modes: WordTable  # mode -> phrasings around the quoted text {q}
    styles: WordTable  # mode -> lettering styles (not every mode has some)
    first_names: Words
    shop_kinds: Words
    shop_words: Words
    fixed_texts: WordTable  # family -> texts, with {name}, {town}, {adj}, {noun} slots
    title_adjectives: Words
    title_nouns: Words
    towns: Words
    shots: Words


@dataclass(frozen=True)
class ActivityGroup:
    activities: Words
    places: Words  # where every one of the activities makes sense
    setting: Literal["indoor", "outdoor"]


@dataclass(frozen=True)
class EverydayWords:
    people: Words
    clothes: Words
    activity_groups: tuple[ActivityGroup, ...]
    extras: Words  # weather and times, outdoors
    crowds: Words  # only for people outdoors
    neutral: Words  # indoors and out: times and moments rather than weather
    groups: WordTable  # counting category -> herd words ("A flock of")
    food_containers: Words
    food_mains: Words
    food_sides: Words
    food_contexts: Words
    rooms: WordTable  # room -> furnishings
    room_extras: Words
    room_adjectives: Words
    train_colours: Words
    train_kinds: Words
    train_actions: Words
    plane_colours: Words
    plane_kinds: Words
    plane_actions: Words


@dataclass(frozen=True)
class WhoopsWords:
    creatures: Mapping[str, str]  # creature -> home climate, a key of `clashes`
    places: WordTable  # kind of place -> places
    clashes: WordTable  # home climate -> kinds of place that clash with it
    habits: Words
    jobs: WordTable  # job -> places it happens
    workers: Words
    attire: Words
    hot_things: Words
    underwater: Words
    cold_things: Words
    heat: Words
    heavy_things: Words
    floating: Words
    tiny: Words
    tiny_spots: Words
    giant: Words
    giant_spots: Words
    objects: Words
    materials: Words
    settings: Words
    eras: WordTable  # person of another era -> places of their era
    gadgets: Words
    prey: Mapping[str, str]  # prey -> its predator ({p} in `reversals`)
    reversals: Words
    reversal_places: Words
    people: Mapping[str, str]  # person -> possessive ({pos} in `tasks`)
    tasks: Words
    wrong_tools: Words
    witnesses: Words
    shots: Words
    moods: Words


@dataclass(frozen=True)
class ArtWords:
    beings: Words
    being_actions: Words
    things: Words
    settings: Words
    times: Words
    media: Words
    lighting: Words
    detail: Words
    palette: Words
    composition: Words
    mood: Words
    leads: Words  # "" starts the prompt with the subject itself


@dataclass(frozen=True)
class ParagraphScene:
    taken: str  # "indoors" or "outdoors"
    places: Words
    actions: Words
    side: Words
    background: Words
    top: Words
    bottom: Words
    held: Words


@dataclass(frozen=True)
class ParagraphWords:
    people: Mapping[str, str]  # subject -> pronoun
    hair: Words
    bearded: Words  # subjects who may have "a beard"
    tops: Words
    other_clothes: Words
    plural_clothes: Words
    colours: Words
    scenes: Mapping[str, ParagraphScene]
    openers: Words
    person_sentences: Words
    side_sentences: Words
    back_sentences: Words
    top_sentences: Words
    bottom_sentences: Words


@dataclass(frozen=True)
class ShapesWords:
    shapes: Words
    colours: Mapping[str, str]  # colour name -> the "#rrggbb" it is drawn in
    background: str  # "#rrggbb"
    sizes: Words  # small to large
    count_words: Words  # the word of each count from one up
    relations: Mapping[str, Literal["left", "right", "above", "below"]]  # phrase -> where the subject is
    openers: Words  # "" starts the prompt with the objects
    verbs: Words  # between a subject and its relation ("" for none)
    joiners: Words  # before a further object: ", with", " and"
    endings: Words  # "" or a phrase true of every picture


@dataclass(frozen=True)
class Vocabulary:
    """All word lists; each field is read from `vocab/<field>.json`."""

    english: EnglishWords
    photos: PhotoWords
    objects: ObjectWords
    counting: CountingWords
    spatial: SpatialWords
    attribute: AttributeWords
    text: TextWords
    everyday: EverydayWords
    whoops: WhoopsWords
    art: ArtWords
    paragraph: ParagraphWords
    shapes: ShapesWords


# --- loading -----------------------------------------------------------------------------------------------------
@functools.cache
def vocab() -> Vocabulary:
    """Every vocabulary file, read and checked on the first call; later calls return the same object."""
    return load_vocab(VOCAB_DIR)


def load_vocab(folder: Path) -> Vocabulary:
    """Read and check `folder/<name>.json` for every field of `Vocabulary` (uncached; `vocab()` caches)."""
    hints = get_type_hints(Vocabulary)
    return Vocabulary(**{f.name: _load_file(folder / f"{f.name}.json", hints[f.name]) for f in _fields(Vocabulary)})


def _load_file(path: Path, cls: type) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicate_keys)
    except FileNotFoundError:
        raise VocabError(f"{path}: vocabulary file is missing; reinstall the package") from None
    except ValueError as e:  # JSONDecodeError, or a repeated key
        raise VocabError(f"{path}: not valid JSON: {e}") from None
    if isinstance(data, dict):
        about = data.pop("about", "")
        if not isinstance(about, str):
            raise VocabError(f"{path}: about: expected a string, got {_kind(about)}")
    return _convert(data, cls, str(path), "")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} appears twice in one object")
        result[key] = value
    return result


def _convert(value: Any, hint: Any, file: str, where: str) -> Any:
    """`value` (from JSON) checked against the type `hint`, lists as tuples and objects as read-only maps."""

    def fail(expected: str) -> VocabError:
        return VocabError(f"{file}: {where or '(top level)'}: expected {expected}, got {_kind(value)}")

    origin = get_origin(hint)
    if hint is str:
        if not isinstance(value, str):
            raise fail("a string")
        return value
    if origin is Literal:
        if value not in get_args(hint):
            raise fail("one of " + ", ".join(map(repr, get_args(hint))))
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise fail("a list")
        item = get_args(hint)[0]
        return tuple(_convert(v, item, file, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is Mapping:
        if not isinstance(value, dict):
            raise fail("an object")
        item = get_args(hint)[1]
        return MappingProxyType({k: _convert(v, item, file, _key(where, k)) for k, v in value.items()})
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise fail(f"an object with the keys {', '.join(f.name for f in _fields(hint))}")
        return _build(hint, value, file, where)
    raise TypeError(f"template_vocab cannot check the type {hint!r}")  # a schema bug, not a data one


def _build(cls: type, value: dict, file: str, where: str) -> Any:
    fields = _fields(cls)
    names = [f.name for f in fields]
    unknown = [k for k in value if k not in names]
    if unknown:
        raise VocabError(f"{file}: {_key(where, unknown[0])}: unknown key; expected one of {', '.join(names)}")
    missing = [f.name for f in fields if f.name not in value and f.default is dataclasses.MISSING]
    if missing:
        raise VocabError(f"{file}: {_key(where, missing[0])}: missing")
    hints = get_type_hints(cls)
    return cls(**{k: _convert(v, hints[k], file, _key(where, k)) for k, v in value.items()})


@functools.cache
def _fields(cls: type) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(cls)


def _key(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    names = {str: "a string", list: "a list", dict: "an object", int: "a number", float: "a number"}
    return names.get(type(value), "null" if value is None else type(value).__name__)
