"""The shapes checker against the truth: hundreds of drawn scenes at 64 and 32 px, the DSG questions of true and of
deliberately wrong captions (a colour swapped, a count off by one, a relation reversed), noisy pictures, and
scoring through `score_images` with the programmatic answerer."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
from PIL import Image

from selma.errors import SelmaError
from selma.evaluation import AnswererConfig, EvalConfig, EvalImage, Question, score_images, vqascore_question
from selma.evaluation.answerer_factory import make_answerer
from selma.evaluation.questions import scene_questions
from selma.shapes.checker import check, holds, truth
from selma.shapes.detect import components, find_objects
from selma.shapes.world import COLOURS, RELATIONS, clear_directions, describe, random_scene, render, spec_of

SCENES = 300
OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above"}
PHRASE = {direction: phrase for phrase, direction in RELATIONS.items()}


def wrong_specs(scene, spec: dict, rng: random.Random) -> list[dict]:
    """Specs that say something false of the scene: one group's colour swapped, one count off by one, a relation
    reversed (the caption's own, or a clear one of the scene stated backwards)."""
    wrong = []
    groups = spec["groups"]
    swapped = copy.deepcopy(spec)
    g = rng.choice(swapped["groups"])
    taken = {(x["shape"], x["colour"]) for x in groups}
    g["colour"] = rng.choice([c for c in COLOURS if (g["shape"], c) not in taken])
    wrong.append(swapped)
    recounted = {"groups": copy.deepcopy(groups), "relations": []}
    g = rng.choice(recounted["groups"])
    g["count"] = g["count"] + 1 if g["count"] == 1 or rng.random() < 0.5 else g["count"] - 1
    wrong.append(recounted)
    if spec["relations"]:
        reversed_ = copy.deepcopy(spec)
        r = reversed_["relations"][0]
        if rng.random() < 0.5:
            r["subject"], r["object"] = r["object"], r["subject"]
        else:
            r["relation"] = PHRASE[OPPOSITE[RELATIONS[r["relation"]]]]
        wrong.append(reversed_)
    else:
        singles = [i for i, x in enumerate(groups) if x["count"] == 1]
        key = {(o.shape, o.colour): o for o in scene.objects}
        for a in singles:
            for b in singles:
                first = groups[a]["shape"], groups[a]["colour"]
                second = groups[b]["shape"], groups[b]["colour"]
                directions = clear_directions(key[first], key[second]) if a != b else []
                if directions:
                    phrase = PHRASE[OPPOSITE[directions[0]]]
                    wrong.append({"groups": groups, "relations": [{"subject": a, "relation": phrase, "object": b}]})
                    return wrong
    return wrong


def questions_of(scene, rng: random.Random) -> tuple[list[Question], list[Question]]:
    spec = spec_of(scene, rng)
    right = scene_questions(describe(spec, rng)[1])
    wrong = [q for w in wrong_specs(scene, spec, rng) for q in scene_questions(describe(w, rng)[1])]
    return right, wrong


def agreement(size: int, noise: float = 0.0, scenes: int = SCENES) -> dict:
    """Counts of questions where the checker (on the picture) and the truth (on the scene) agree."""
    counts = {"questions": 0, "agree": 0, "true": 0, "right_agree": 0, "right": 0}
    for seed in range(scenes):
        rng = random.Random(seed)
        scene = random_scene(rng)
        picture = render(scene, size)
        if noise:
            pixels = np.asarray(picture, np.float32) + np.random.default_rng(seed).normal(0, noise, (size, size, 3))
            picture = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        right, wrong = questions_of(scene, rng)
        seen = truth(scene)
        for is_right, q in [(True, q) for q in right] + [(False, q) for q in wrong]:
            expected = holds(seen, q.category, q.spec)
            got = check(picture, q).p_yes > 0.5
            counts["questions"] += 1
            counts["agree"] += expected == got
            counts["true"] += expected
            if is_right:
                counts["right"] += 1
                counts["right_agree"] += expected == got
    return counts


@pytest.mark.parametrize("size", [64, 32])
def test_the_checker_agrees_with_the_truth_on_true_and_wrong_captions(size):
    counts = agreement(size)
    share = counts["agree"] / counts["questions"]
    print(f"\n{size} px: {counts['agree']}/{counts['questions']} agree ({share:.4f}); true: {counts['true']}")
    assert counts["right"] == counts["right_agree"] > 0  # every question of a true caption holds in its picture
    assert 0.2 < counts["true"] / counts["questions"] < 0.9  # the wrong captions do ask false things
    assert share >= 0.99


def test_the_checker_tolerates_pixel_noise():
    counts = agreement(64, noise=25.0, scenes=100)
    share = counts["agree"] / counts["questions"]
    print(f"\n64 px, noise sd 25: {counts['agree']}/{counts['questions']} agree ({share:.4f})")
    assert share >= 0.99


def test_a_large_blurred_picture_is_read_like_the_small_one():
    from PIL import ImageFilter

    for seed in range(20):
        scene = random_scene(random.Random(seed))
        big = render(scene, 64).resize((512, 512), Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(3))
        found = sorted((o.shape, o.colour, o.size) for o in find_objects(big))
        assert found == sorted((o.shape, o.colour, o.size) for o in scene.objects), seed


def test_components_are_eight_connected():
    mask = np.zeros((6, 6), bool)
    mask[0, 0] = mask[1, 1] = True  # diagonal neighbours: one component
    mask[4:6, 4:6] = True
    labels = components(mask)
    assert labels[0, 0] == labels[1, 1] == 0 and labels[4, 4] == labels[5, 5] == 4 * 6 + 4
    assert (labels[~mask] == -1).all() and len(np.unique(labels[mask])) == 2


def test_questions_it_cannot_answer_raise_a_clear_error():
    picture = render(random_scene(random.Random(0)), 32)
    with pytest.raises(SelmaError, match="VLM answerer"):
        check(picture, Question(1, "entity", "Is there a cat?", (), {"entity": 0}))
    with pytest.raises(SelmaError, match="VQAScore only for prompts of the shapes world"):
        check(picture, vqascore_question("a cat on a mat"))


def _score(tmp_path, scene, prompt: str, dsg: dict, name: str) -> dict:
    path = tmp_path / f"{name}.png"
    render(scene, 64).save(path)
    image = EvalImage("shapes_spatial", name, prompt, 0, path, record={"scene": dsg})
    config = EvalConfig(metrics=("dsg", "vqascore"), answerer=AnswererConfig(backend="programmatic", model="shapes"))
    scores, _ = score_images([image], config, tmp_path / f"eval_{name}")
    return {s.metric: s.score for s in scores}


def test_score_images_with_the_programmatic_shapes_answerer(tmp_path):
    assert make_answerer(AnswererConfig(backend="programmatic", model="shapes")).label == "programmatic:shapes"
    for seed in range(5):
        rng = random.Random(seed)
        scene = random_scene(rng, min_objects=2, max_objects=3)
        spec = spec_of(scene, rng, p_relation=1.0)
        prompt, dsg = describe(spec, rng)
        assert _score(tmp_path, scene, prompt, dsg, f"right{seed}") == {"dsg": 1.0, "vqascore": 1.0}
        wrong_prompt, wrong_dsg = describe(wrong_specs(scene, spec, rng)[0], rng)
        wrong = _score(tmp_path, scene, wrong_prompt, wrong_dsg, f"wrong{seed}")
        assert wrong["dsg"] < 1.0 and wrong["vqascore"] == 0.0, wrong_prompt
