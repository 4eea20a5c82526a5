"""The scenes the template grammars record with each prompt: they say only what the text says, they turn into
DSG questions, and they travel with the prompts into prompts/<skill>.jsonl and the held-out files."""

from __future__ import annotations

import copy
import hashlib
import json
import re

import pytest

from selma.atomic_files import read_jsonl
from selma.errors import LLMError
from selma.evaluation.questions import build_question_request, scene_questions
from selma.evaluation.scores import check_graph
from selma.llm import LLMConfig, LLMRequest, make_backend
from selma.llm.template_backend import TemplateBackend, generate_prompts, generate_scenes
from selma.prompts import held_out
from selma.prompts.generation import PromptGenConfig, parse_numbered_list, prompts_path
from selma.prompts.generation import generate_prompts as run_prompt_stage
from selma.prompts.skills import builtin_skill, builtin_skill_names

SKILLS = builtin_skill_names()
SEEDS = (0, 1, 7, 123, 2024)
COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
# sha256 of the 20-prompt answers for seeds 0, 1, 2 of each builtin skill, taken before the grammars recorded
# scenes: recording them must not change a single prompt (nor any random draw behind one).
ANSWER_HASHES = {
    "art": "e0b1ec396b0996f5",
    "attribute_binding": "9a681b6551f5bf30",  # changed on purpose: never two garments of one slot
    "counting": "300ae37a0eb50866",
    "everyday": "d6c365cccdca9c62",
    "paragraph": "969830b3c94dae64",
    "spatial": "4a410f49017a365d",
    "text_rendering": "7ed07292c3917826",
    "whoops": "bbcef3500b4eafaa",
}


def request(skill, seed: int, num_prompts: int = 20, task: str = "prompts") -> LLMRequest:
    return LLMRequest((), "", skill, skill.examples, num_prompts, seed, call_id=seed, task=task)


def written(name: str, seed: int) -> list[tuple[str, dict]]:
    skill = builtin_skill(name)
    return generate_scenes(skill.grammar, 20, skill.word_limit, seed, skill.examples)


def _find(text: str, phrase: str, start: int = 0) -> int:
    """Where `phrase` occurs in `text` as whole words (case aside) from `start` on, or -1."""
    match = re.compile(rf"(?<![\w-]){re.escape(phrase.lower())}(?![\w-])").search(text.lower(), start)
    return match.start() if match else -1


def _named(entity: dict) -> str:
    """How the text names the entity: its plural when there are several."""
    many = entity["count"] != 1 or entity.get("number") == "plural"
    return entity["plural"] if many else entity["noun"]


def scene_problems(text: str, scene: dict) -> list[str]:
    """Everything the scene records that the prompt text does not literally say (empty: the scene is faithful)."""
    problems = [f"unknown key {k!r}" for k in scene if k not in ("entities", "relations", "places", "text", "global")]
    entities = scene.get("entities", [])
    if not entities:
        problems.append("no entity")
    for e in entities:
        name = _named(e)
        if _find(text, name) < 0:
            problems.append(f"entity {name!r} is not in the text")
        if e.get("number") not in (None, "plural", "mass"):
            problems.append(f"entity {name!r} has number {e['number']!r}")
        if "count_word" in e:
            if COUNT_WORDS.get(e["count"]) != e["count_word"]:
                problems.append(f"count word {e['count_word']!r} is not the count {e['count']}")
            # the count word, then at most three adjectives, then the noun: 'three sturdy oxen'
            counted = rf"(?<![\w-]){e['count_word']}(?: [\w-]+){{0,3}} {re.escape(name)}(?![\w-])"
            if not re.search(counted, text, re.I):
                problems.append(f"{e['count_word']!r} does not count {name!r}")
        elif e["count"] != 1:
            problems.append(f"entity {name!r} has count {e['count']} but no count word")
        for attribute in e["attributes"]:
            if not attribute or _find(text, attribute) < 0:
                problems.append(f"attribute {attribute!r} of {name!r} is not in the text")
    for r in scene.get("relations", []):
        at = _find(text, _named(entities[r["subject"]]))
        at = _find(text, r["relation"], at + 1) if at >= 0 else -1
        if at < 0:
            problems.append(f"no {r['relation']!r} after the subject {_named(entities[r['subject']])!r}")
        objects = [r["object"], *([r["object2"]] if "object2" in r else [])]
        for index in objects:
            if index == r["subject"]:
                problems.append(f"relation {r['relation']!r} relates an entity to itself")
            at = _find(text, _named(entities[index]), at + 1) if at >= 0 else -1
            if at < 0:
                problems.append(f"{_named(entities[index])!r} does not follow {r['relation']!r}")
    for p in scene.get("places", []):
        if _find(text, p["place"]) < 0 or not 0 <= p["subject"] < len(entities):
            problems.append(f"place {p['place']!r} is not in the text")
    for quoted in scene.get("text", []):
        if f'"{quoted}"' not in text:
            problems.append(f"the text {quoted!r} is not quoted in the prompt")
    for fact in scene.get("global", []):
        if _find(text, re.sub(r"^an? ", "", fact)) < 0:
            problems.append(f"the global fact {fact!r} is not in the text")
    return problems


# --- the scenes say what the text says -------------------------------------------------------------------------
@pytest.mark.parametrize("name", SKILLS)
def test_every_scene_says_only_what_its_prompt_says(name):
    checked = 0
    for seed in SEEDS:
        for text, scene in written(name, seed):
            assert scene_problems(text, scene) == [], f"{text}\n{json.dumps(scene)}"
            checked += 1
    assert checked == 20 * len(SEEDS)


@pytest.mark.parametrize("name", SKILLS)
def test_scenes_record_the_structure_the_skill_is_about(name):
    scenes = [scene for seed in SEEDS for _, scene in written(name, seed)]
    share = {
        "counting": lambda s: any(e["count"] > 1 for e in s["entities"]),
        "spatial": lambda s: bool(s.get("relations")) or any(p["place"] == "on the left" for p in s["places"]),
        "attribute_binding": lambda s: sum(bool(e["attributes"]) for e in s["entities"]) >= 2,
        "text_rendering": lambda s: len(s.get("text", ())) == 1,
        "art": lambda s: len(s.get("global", ())) == 1,
    }.get(name, lambda s: len(s["entities"]) >= 1)
    hits = sum(map(share, scenes))
    assert hits >= (0.5 if name == "counting" else 0.9) * len(scenes), f"{name}: {hits} of {len(scenes)}"


def test_the_check_fails_on_a_scene_that_says_more_than_the_text():
    text, scene = written("spatial", 0)[0]
    assert scene_problems(text, scene) == []
    for tamper in (
        lambda s: s["entities"][0].update(noun="zebra", plural="zebras"),
        lambda s: s["entities"][0]["attributes"].append("made of gold"),
        lambda s: s.setdefault("relations", []).append({"subject": 0, "relation": "far above", "object": 1}),
        lambda s: s.setdefault("places", []).append({"subject": 0, "place": "on the moon"}),
        lambda s: s["entities"][0].update(count=3, count_word="three"),
        lambda s: s.setdefault("text", []).append("OPEN"),
        lambda s: s.setdefault("global", []).append("night"),
    ):
        wrong = copy.deepcopy(scene)
        tamper(wrong)
        assert scene_problems(text, wrong), (text, wrong)


# --- recording scenes leaves the prompts as they were ----------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ANSWER_HASHES))  # the skills that existed before scenes were recorded
def test_prompts_are_byte_for_byte_what_they_were_before_scenes(name):
    backend = TemplateBackend(LLMConfig())
    answers = "\n".join(backend.complete(request(builtin_skill(name), seed)) for seed in range(3))
    assert hashlib.sha256(answers.encode()).hexdigest()[:16] == ANSWER_HASHES[name]


@pytest.mark.parametrize("name", SKILLS)
def test_generate_prompts_is_generate_scenes_without_the_scenes(name):
    skill = builtin_skill(name)
    pairs = generate_scenes(skill.grammar, 20, skill.word_limit, 5)
    assert generate_prompts(skill.grammar, 20, skill.word_limit, 5) == [text for text, _ in pairs]


# --- scenes become DSG questions -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SKILLS)
def test_every_scene_gives_well_formed_questions(name):
    for seed in SEEDS:
        for text, scene in written(name, seed):
            questions = scene_questions(scene)
            check_graph(questions)
            entity_questions = [q for q in questions if q.category == "entity"]
            assert len(entity_questions) == len(scene["entities"]), text
            for q in questions:
                assert q.text.endswith("?") and "None" not in q.text and "  " not in q.text, (text, q.text)
                if q.category in ("attribute", "count", "relation"):
                    assert q.parents and all(p in {e.id for e in entity_questions} for p in q.parents), q
            for relation in scene.get("relations", ()):
                assert any(relation["relation"] in q.text for q in questions if q.category == "relation")


def test_scene_questions_read_plural_mass_places_and_between():
    scene = {
        "entities": [
            {"noun": "mug", "plural": "mugs", "count": 1, "attributes": ["red"]},
            {"noun": "boots", "plural": "boots", "count": 1, "number": "plural", "attributes": ["leather"]},
            {"noun": "pasta", "plural": "pasta", "count": 1, "number": "mass", "attributes": []},
        ],
        "relations": [{"subject": 0, "relation": "between", "object": 1, "object2": 2},
                      {"subject": 1, "relation": "next to", "object": 2}],
        "places": [{"subject": 0, "place": "on a wooden desk"}, {"subject": 1, "place": "on the left"}],
        "text": ["OPEN"],
        "global": ["an oil painting"],
    }  # fmt: skip
    questions = scene_questions(scene)
    assert [(q.category, q.text, q.parents) for q in questions] == [
        ("entity", "Is there a mug?", ()),
        ("attribute", "Is the mug red?", (1,)),
        ("entity", "Are there boots?", ()),
        ("attribute", "Are the boots leather?", (3,)),
        ("entity", "Is there pasta?", ()),
        ("relation", "Is the mug between the boots and the pasta?", (1, 3, 5)),
        ("relation", "Are the boots next to the pasta?", (3, 5)),
        ("relation", "Is the mug on a wooden desk?", (1,)),
        ("relation", "Are the boots on the left?", (3,)),
        ("text", 'Does the image show the text "OPEN"?', ()),
        ("global", "Is it an oil painting?", ()),
    ]
    assert questions[5].spec == {"subject": 0, "object": 1, "object2": 2, "relation": "between"}
    assert questions[9].spec == {"text": "OPEN"}


# --- the backend keeps the scenes; it writes no questions ------------------------------------------------------
def test_the_template_backend_keeps_the_scene_of_every_prompt_it_wrote():
    backend = make_backend(LLMConfig())
    skill = builtin_skill("counting")
    prompts = parse_numbered_list(backend.complete(request(skill, 4)), skill.word_limit).prompts
    prompts += parse_numbered_list(backend.complete(request(skill, 5, 7)), skill.word_limit).prompts
    assert len(prompts) == 27 and set(backend.scenes) == set(prompts)
    assert [backend.scenes[p] for p in prompts[:20]] == [scene for _, scene in written("counting", 4)]


def test_the_template_backend_refuses_to_write_questions():
    backend = make_backend(LLMConfig())
    skill = builtin_skill("spatial")
    with pytest.raises(LLMError, match="only for prompts it generated.*use an LLM backend"):
        backend.complete(build_question_request(skill, "a cat on a mat", seed=0, call_id=1))
    with pytest.raises(LLMError, match="only for prompts it generated"):
        backend.complete(request(skill, 0, task="questions"))
    assert backend.scenes == {}


# --- scenes travel with the prompts ----------------------------------------------------------------------------
def test_prompt_records_carry_their_scenes(tmp_path):
    skill = builtin_skill("attribute_binding")
    result = run_prompt_stage(skill, LLMConfig(), tmp_path, PromptGenConfig(count=30, concurrency=4))
    records = read_jsonl(prompts_path(tmp_path, skill.name))
    assert result.complete and len(records) == 30
    for record in records:
        assert scene_problems(record["text"], record["scene"]) == [], record
        assert scene_questions(record["scene"])


def test_held_out_records_keep_their_scenes_across_a_rerun(tmp_path, monkeypatch):
    skill = builtin_skill("spatial")
    records = held_out.held_out_records(tmp_path, skill, [], 4)
    assert len(records) == 4 and all(set(r) == {"prompt", "scene"} for r in records)
    for r in records:
        assert scene_problems(r["prompt"], r["scene"]) == []
    assert json.loads(held_out.held_out_path(tmp_path, skill.name).read_text()) == [r["prompt"] for r in records]

    def no_new_prompts(*args, **kwargs):
        raise AssertionError("a rerun must reuse the saved held-out prompts")

    monkeypatch.setattr(held_out, "write_held_out_records", no_new_prompts)
    assert held_out.held_out_records(tmp_path, skill, [], 4) == records
    assert held_out.held_out_records(tmp_path, skill, [], 2) == records[:2]
    assert held_out.held_out_prompts(tmp_path, skill, [], 4) == [r["prompt"] for r in records]
    assert held_out.load_held_out_prompts(tmp_path, skill.name) == [r["prompt"] for r in records]


def test_an_old_plain_list_held_out_file_still_loads(tmp_path):
    skill = builtin_skill("counting")
    path = held_out.held_out_path(tmp_path, skill.name)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(["two cats on a sofa", "a dog under a table"]))
    assert held_out.held_out_records(tmp_path, skill, [], 5) == [
        {"prompt": "two cats on a sofa"},
        {"prompt": "a dog under a table"},
    ]
    assert held_out.held_out_prompts(tmp_path, skill, [], 1) == ["two cats on a sofa"]
    assert not held_out.held_out_scenes_path(tmp_path, skill.name).exists()


def test_a_hand_edited_held_out_prompt_loses_its_scene(tmp_path):
    skill = builtin_skill("text_rendering")
    records = held_out.held_out_records(tmp_path, skill, [], 2)
    path = held_out.held_out_path(tmp_path, skill.name)
    path.write_text(json.dumps([records[0]["prompt"], "a sign that says hello"]))
    assert held_out.load_held_out_records(tmp_path, skill.name) == [records[0], {"prompt": "a sign that says hello"}]


def test_a_person_never_wears_two_garments_of_one_slot():
    """'wearing a wool sweater and a cotton shirt' is two tops; a dress is a top and a bottom."""
    import random

    from selma.llm.grammars.attribute import _slots, attribute
    from selma.llm.template_vocab import vocab

    a = vocab().attribute
    assert all(_slots(a, g) for g in a.garments)  # every garment is worn somewhere
    worn = 0
    for seed in range(2000):
        text, scene = attribute(random.Random(seed), 60)
        garments = [e["noun"].split()[-1] for e in scene["entities"][1:] if " wearing " in text]
        garments = [g for g in garments if g in a.garments]
        if len(garments) == 2:
            worn += 1
            assert not _slots(a, garments[0]) & _slots(a, garments[1]), text
    assert worn > 100
