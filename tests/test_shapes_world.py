"""The shapes world: its interface, deterministic flat renders, scenes without overlaps, captions that say only what
is drawn, the three `shapes_*` template grammars (their recorded scenes, DSG questions and layouts) and the reader
that turns their prompts back into specs."""

from __future__ import annotations

import itertools
import json
import random
import re

import numpy as np
import pytest

from selma.evaluation.questions import scene_questions
from selma.llm.grammars.shapes import scene_of
from selma.llm.template_backend import GRAMMARS, generate_scenes
from selma.prompts.skills import builtin_skill
from selma.shapes.checker import holds, truth
from selma.shapes.parse import parse_prompt
from selma.shapes.world import (
    BACKGROUND,
    COLOURS,
    FRAME,
    GAP,
    RELATIONS,
    SHAPES,
    SIZES,
    Scene,
    ShapeObject,
    caption,
    caption_scene,
    layout,
    random_scene,
    relation_holds,
    render,
    scene_for_prompt,
    spec_of,
)

SKILLS = {"shapes_counting": "shapes_counting", "shapes_spatial": "shapes_spatial",
          "shapes_colour": "shapes_colour_binding"}  # fmt: skip


def all_hold(objects, dsg: dict) -> bool:
    return all(holds(objects, q.category, q.spec, q.text) for q in scene_questions(dsg))


def question_set(dsg: dict) -> set:
    return {(q.category, q.text, json.dumps(q.spec.get("check"), sort_keys=True)) for q in scene_questions(dsg)}


def test_the_interface():
    assert SHAPES == ("circle", "square", "triangle") and SIZES == ("small", "large")
    assert {"red", "green", "blue", "yellow", "purple", "orange"} <= set(COLOURS)
    palette = [np.array(c, float) for c in (*COLOURS.values(), BACKGROUND)]
    assert min(np.linalg.norm(a - b) for a, b in itertools.combinations(palette, 2)) > 80  # well separated
    scene = Scene((ShapeObject("circle", "red", "small", 0.3, 0.4),))
    assert Scene.from_json(json.loads(json.dumps(scene.to_json()))) == scene
    with pytest.raises(ValueError, match="unknown shape"):
        ShapeObject("star", "red", "small", 0.5, 0.5)


def test_render_is_deterministic_flat_and_sized():
    for seed in range(20):
        scene = random_scene(random.Random(seed))
        assert random_scene(random.Random(seed)) == scene
        for size in (64, 32):
            image = render(scene, size)
            assert image.size == (size, size) and image.mode == "RGB"
            assert image.tobytes() == render(scene, size).tobytes()
            colours = {tuple(p) for p in np.asarray(image).reshape(-1, 3)}
            assert colours <= {BACKGROUND, *(COLOURS[o.colour] for o in scene.objects)}  # no anti-aliasing
            assert tuple(np.asarray(image)[0, 0]) == BACKGROUND


def test_random_scenes_never_overlap_and_stay_inside_the_frame():
    sizes = []
    for seed in range(400):
        scene = random_scene(random.Random(seed), max_objects=5)
        sizes.append(len(scene.objects))
        for o in scene.objects:
            left, top, right, bottom = o.box
            assert min(left, top) >= FRAME - 1e-9 and max(right, bottom) <= 1 - FRAME + 1e-9
        for a, b in itertools.combinations(scene.objects, 2):
            (l1, t1, r1, b1), (l2, t2, r2, b2) = a.box, b.box
            assert max(l2 - r1, l1 - r2, t2 - b1, t1 - b2) >= GAP - 1e-9, (a, b)
    assert set(sizes) == {1, 2, 3, 4, 5}


def test_random_scene_constraints():
    scene = random_scene(random.Random(3), min_objects=3, max_objects=3, shapes=("circle",), colours=("red",))
    assert [(o.shape, o.colour) for o in scene.objects] == [("circle", "red")] * 3
    with pytest.raises(ValueError, match="choose from"):
        random_scene(random.Random(0), shapes=("star",))
    with pytest.raises(ValueError, match="min_objects"):
        random_scene(random.Random(0), min_objects=3, max_objects=2)


def test_relations_read_boxes():
    left, right = (0.1, 0.4, 0.3, 0.6), (0.5, 0.45, 0.7, 0.65)
    assert relation_holds(left, right, "left") and relation_holds(right, left, "right")
    assert not relation_holds(right, left, "left") and not relation_holds(left, right, "above")
    assert relation_holds((0.4, 0.1, 0.6, 0.3), (0.45, 0.5, 0.65, 0.7), "above")


def test_captions_say_only_what_is_drawn():
    kinds = {"relation": 0, "count": 0, "attribute": 0}
    for seed in range(300):
        rng = random.Random(seed)
        scene = random_scene(rng)
        text, dsg = caption_scene(scene, random.Random(seed))
        assert caption(scene, random.Random(seed)) == text
        assert all_hold(truth(scene), dsg), (text, scene)
        spec = parse_prompt(text)
        assert spec is not None and question_set(scene_of(spec)) == question_set(dsg), text
        for q in scene_questions(dsg):
            kinds[q.category] = kinds.get(q.category, 0) + 1
    assert min(kinds.values()) > 30, kinds  # captions count, size and relate


@pytest.mark.parametrize("grammar", list(SKILLS))
def test_the_grammars_record_scenes_whose_words_are_in_the_text(grammar):
    skill = builtin_skill(SKILLS[grammar])
    assert skill.grammar == grammar in GRAMMARS and len(skill.examples) == 3
    for example in skill.examples:
        assert parse_prompt(example) is not None, example
    for seed in range(5):
        for text, dsg in generate_scenes(grammar, 20, skill.word_limit, seed, skill.examples):
            assert text[0].isupper() and text.endswith(".")
            lower = text.lower()
            for entity in dsg["entities"]:
                name = entity["plural"] if entity["count"] > 1 else entity["noun"]
                assert re.search(rf"\b{name}\b", lower), (name, text)
                assert all(re.search(rf"\b{a}\b", lower) for a in entity["attributes"]), text
                assert set(entity["check"]) >= {"shape", "colour", "count"}
            for relation in dsg.get("relations", ()):
                assert relation["relation"] in lower, text
            questions = scene_questions(dsg)
            assert all("check" in q.spec or "subject_check" in q.spec for q in questions)
            spec = parse_prompt(text)
            assert spec is not None and question_set(scene_of(spec)) == question_set(dsg), text
            drawn = layout(spec, random.Random(seed))
            assert all_hold(truth(drawn), dsg), (text, drawn)


def test_each_grammar_is_about_its_skill():
    def share(grammar, test):
        scenes = [dsg for seed in range(5) for _, dsg in generate_scenes(grammar, 20, 30, seed)]
        return sum(map(test, scenes)) / len(scenes)

    assert share("shapes_counting", lambda s: any(e["count"] > 1 for e in s["entities"])) == 1.0
    assert share("shapes_spatial", lambda s: bool(s.get("relations"))) == 1.0
    colours = lambda s: len({e["check"]["colour"] for e in s["entities"]}) == len(s["entities"]) >= 2  # noqa: E731
    assert share("shapes_colour", colours) == 1.0


def test_scene_for_prompt_and_layout_agree():
    spec = {"groups": [{"shape": "square", "colour": "purple", "size": "large", "count": 1},
                       {"shape": "circle", "colour": "orange", "size": "small", "count": 1},
                       {"shape": "triangle", "colour": "green", "size": None, "count": 2}],
            "relations": [{"subject": 0, "relation": "above", "object": 1}]}  # fmt: skip
    text, dsg = scene_for_prompt(spec, random.Random(0))
    assert "large purple square above a small orange circle" in text and "two green triangles" in text
    assert [e["noun"] for e in dsg["entities"]] == ["purple square", "orange circle", "green triangle"]
    for seed in range(10):
        drawn = layout(spec, random.Random(seed))
        assert sorted((o.shape, o.colour) for o in drawn.objects) == sorted(
            [("square", "purple"), ("circle", "orange"), ("triangle", "green"), ("triangle", "green")]
        )
        assert all_hold(truth(drawn), dsg)
    with pytest.raises(ValueError, match="share a shape and a colour"):
        scene_for_prompt({"groups": [spec["groups"][0], spec["groups"][0]]}, random.Random(0))
    with pytest.raises(ValueError, match="single objects"):
        scene_for_prompt({"groups": spec["groups"], "relations": [{"subject": 2, "relation": "above", "object": 0}]},
                         random.Random(0))  # fmt: skip


def test_spec_of_relates_only_clear_single_objects():
    related = 0
    for seed in range(200):
        scene = random_scene(random.Random(seed))
        spec = spec_of(scene, random.Random(seed), p_relation=1.0)
        for r in spec["relations"]:
            related += 1
            a, b = spec["groups"][r["subject"]], spec["groups"][r["object"]]
            assert a["count"] == b["count"] == 1 and r["relation"] in RELATIONS
    assert related > 50


def test_parse_rejects_other_prompts():
    for text in ("A cat on a mat.", "Two red circles and a dog.", "A red circles.", "Two red circle.",
                 "A red circle near a blue square.", "A red circle to the left of the blue square."):  # fmt: skip
        assert parse_prompt(text) is None, text
