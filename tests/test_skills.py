"""Skills: the shipped library, custom skills from JSON files and dicts, and one test per validation rule."""

from __future__ import annotations

import json

import pytest

from selma.prompts.skills import (
    LIBRARY_DIR,
    TEMPLATE_GRAMMARS,
    Skill,
    builtin_skill,
    builtin_skill_names,
    load_skills_file,
    resolve_skill,
    save_skill,
)

BUILTIN = [
    "art",
    "attribute_binding",
    "counting",
    "everyday",
    "paragraph",
    "shapes_colour_binding",  # the shapes world's three skills (selma/shapes)
    "shapes_counting",
    "shapes_spatial",
    "spatial",
    "text_rendering",
    "whoops",
]
EXAMPLES = ["one red apple on a plate", "two green pears in a bowl", "three yellow lemons on a table"]


def skill_dict(**overrides) -> dict:
    data = {
        "name": "fruit_counting",
        "description": "Counts of fruit.",
        "rules": ["Use one, two or three fruits"],
        "word_limit": 12,
        "examples": list(EXAMPLES),
        "grammar": "counting",
    }
    data.update(overrides)
    return data


def test_builtin_names_are_the_eleven_skills():
    assert builtin_skill_names() == BUILTIN


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_skill_loads_and_validates(name):
    skill = builtin_skill(name)
    raw = json.loads((LIBRARY_DIR / f"{name}.json").read_text(encoding="utf-8"))
    assert set(raw) == {"name", "description", "rules", "word_limit", "examples", "grammar"}
    assert skill.name == name
    assert skill.grammar in TEMPLATE_GRAMMARS
    assert len(skill.examples) == 3 and len(set(skill.examples)) == 3
    assert 3 <= len(skill.rules) <= 6
    assert all(not rule[0].isdigit() for rule in skill.rules), "rules are stored without their numbers"
    assert skill.word_limit == (50 if name == "paragraph" else 30)
    assert all(len(example.split()) <= skill.word_limit for example in skill.examples)


def test_builtin_counting_examples_count_to_three_at_most():
    for example in builtin_skill("counting").examples:
        words = example.lower().split()
        assert words[0] in ("one", "two", "three")


def test_builtin_text_rendering_examples_quote_their_text():
    for example in builtin_skill("text_rendering").examples:
        assert example.count('"') == 2


def test_custom_skill_from_dict():
    skill = Skill.from_dict(skill_dict())
    assert skill.examples == tuple(EXAMPLES)
    assert skill.rules == ("Use one, two or three fruits",)
    assert skill.word_limit == 12 and skill.grammar == "counting"


def test_custom_skill_defaults_rules_word_limit_and_grammar():
    data = skill_dict()
    for key in ("rules", "word_limit", "grammar"):
        del data[key]
    skill = Skill.from_dict(data)
    assert (skill.rules, skill.word_limit, skill.grammar) == ((), 30, "everyday")


def test_custom_skills_from_file_one_object(tmp_path):
    path = tmp_path / "one.json"
    path.write_text(json.dumps(skill_dict()), encoding="utf-8")
    (skill,) = load_skills_file(path)
    assert skill.name == "fruit_counting"


def test_custom_skills_from_file_list(tmp_path):
    path = tmp_path / "many.json"
    path.write_text(json.dumps([skill_dict(), skill_dict(name="fruit_two")]), encoding="utf-8")
    assert [s.name for s in load_skills_file(str(path))] == ["fruit_counting", "fruit_two"]


def test_examples_and_rules_are_stripped_and_blank_ones_dropped():
    skill = Skill.from_dict(skill_dict(examples=[f"  {e} " for e in EXAMPLES] + ["   "], rules=["  a rule ", ""]))
    assert skill.examples == tuple(EXAMPLES)
    assert skill.rules == ("a rule",)


# --- one test per validation rule ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["", "Counting", "two words", "../escape", "x" * 65, "_leading"])
def test_bad_name(name):
    with pytest.raises(ValueError, match="is not a valid skill name"):
        Skill.from_dict(skill_dict(name=name))


def test_empty_description():
    with pytest.raises(ValueError, match="description is empty"):
        Skill.from_dict(skill_dict(description="   "))


@pytest.mark.parametrize("examples", [EXAMPLES[:2], [EXAMPLES[0]] * 3, [*EXAMPLES[:2], "  "]])
def test_fewer_than_three_distinct_examples(examples):
    with pytest.raises(ValueError, match="distinct seed example"):
        Skill.from_dict(skill_dict(examples=examples))


@pytest.mark.parametrize("word_limit", [4, 201, 0, -3])
def test_word_limit_out_of_range(word_limit):
    with pytest.raises(ValueError, match=r"outside 5\.\.200"):
        Skill.from_dict(skill_dict(word_limit=word_limit))


@pytest.mark.parametrize("word_limit", ["30", 30.0, True])
def test_word_limit_not_an_integer(word_limit):
    with pytest.raises(ValueError, match="'word_limit' must be an integer"):
        Skill.from_dict(skill_dict(word_limit=word_limit))


def test_example_over_word_limit():
    with pytest.raises(ValueError, match="over the word_limit of 5"):
        Skill.from_dict(skill_dict(word_limit=5, examples=[*EXAMPLES[:2], "a b c d e f"]))


def test_unknown_grammar():
    with pytest.raises(ValueError, match="grammar='poetry' is not known"):
        Skill.from_dict(skill_dict(grammar="poetry"))


def test_unknown_field():
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['colour'\]"):
        Skill.from_dict(skill_dict(colour="red"))


@pytest.mark.parametrize("field", ["name", "description", "examples"])
def test_missing_field(field):
    data = skill_dict()
    del data[field]
    with pytest.raises(ValueError, match=rf"missing field\(s\) \['{field}'\]"):
        Skill.from_dict(data)


@pytest.mark.parametrize("examples", ["one long string", [1, 2, 3], None])
def test_examples_not_a_list_of_strings(examples):
    with pytest.raises(ValueError, match="'examples' must be a list of strings"):
        Skill.from_dict(skill_dict(examples=examples))


def test_rules_not_a_list_of_strings():
    with pytest.raises(ValueError, match="'rules' must be a list of strings"):
        Skill.from_dict(skill_dict(rules="Use one fruit"))


@pytest.mark.parametrize("field", ["name", "description", "grammar"])
def test_text_field_not_a_string(field):
    with pytest.raises(ValueError, match=f"'{field}' must be a string"):
        Skill.from_dict(skill_dict(**{field: 7}))


def test_skill_is_not_an_object():
    with pytest.raises(ValueError, match="a skill must be a JSON object, got str"):
        Skill.from_dict("counting")


def test_constructor_rejects_one_string_as_examples():
    with pytest.raises(ValueError, match="must be lists of strings, not one string"):
        Skill("fruit", "Counts of fruit.", "one apple two pears three plums")


def test_invalid_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"name": "x",', encoding="utf-8")
    with pytest.raises(ValueError, match="is not valid UTF-8 JSON"):
        load_skills_file(path)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_skills_file(tmp_path / "nope.json")


def test_file_that_is_a_folder(tmp_path):
    with pytest.raises(ValueError, match="cannot be read"):
        load_skills_file(tmp_path)


def test_empty_list_file(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match="holds an empty list"):
        load_skills_file(path)


def test_duplicate_names(tmp_path):
    path = tmp_path / "dupes.json"
    path.write_text(json.dumps([skill_dict(), skill_dict()]), encoding="utf-8")
    with pytest.raises(ValueError, match=r"skill name\(s\) \['fruit_counting'\] appear more than once"):
        load_skills_file(path)


def test_error_names_the_list_item(tmp_path):
    path = tmp_path / "second_bad.json"
    path.write_text(json.dumps([skill_dict(), skill_dict(name="ok_too", grammar="nope")]), encoding="utf-8")
    with pytest.raises(ValueError, match="grammar='nope'"):
        load_skills_file(path)


@pytest.mark.parametrize("name", ["no_such_skill", "../skills", "counting/../counting"])
def test_unknown_builtin(name):
    with pytest.raises(ValueError, match="no built-in skill named"):
        builtin_skill(name)


# --- resolve and save ------------------------------------------------------------------------------------------
def test_resolve_by_name():
    assert resolve_skill("counting") == builtin_skill("counting")


def test_resolve_skill_object_is_returned_as_is():
    skill = Skill.from_dict(skill_dict())
    assert resolve_skill(skill) is skill


def test_resolve_by_path(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(skill_dict()), encoding="utf-8")
    assert resolve_skill(str(path)).name == "fruit_counting"
    assert resolve_skill(path).name == "fruit_counting"


def test_resolve_path_with_several_skills(tmp_path):
    path = tmp_path / "two.json"
    path.write_text(json.dumps([skill_dict(), skill_dict(name="fruit_two")]), encoding="utf-8")
    with pytest.raises(ValueError, match="holds 2 skills"):
        resolve_skill(str(path))


def test_resolve_unknown_name():
    with pytest.raises(ValueError, match="no built-in skill named 'nope'"):
        resolve_skill("nope")


@pytest.mark.parametrize("skill", [Skill.from_dict(skill_dict()), builtin_skill("text_rendering")])
def test_save_skill_round_trips(tmp_path, skill):
    path = save_skill(skill, tmp_path / "run")
    assert path == tmp_path / "run" / "skills" / f"{skill.name}.json"
    assert load_skills_file(path) == [skill]
    assert resolve_skill(str(path)) == skill
    assert json.loads(path.read_text(encoding="utf-8")) == skill.to_dict()
