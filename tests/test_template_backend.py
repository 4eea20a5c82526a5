"""The offline template backend: format, limits, determinism, grammar-specific content and diversity."""

from __future__ import annotations

import dataclasses
import random
import re
import shutil
from pathlib import Path

import pytest

from selma.llm import LLMConfig, LLMRequest, make_backend
from selma.llm.grammars.english import article, plural
from selma.llm.template_backend import GRAMMARS, TemplateBackend, generate_prompts
from selma.llm.template_vocab import VOCAB_DIR, VocabError, Vocabulary, load_vocab, vocab
from selma.prompts.diversity import filter_diverse
from selma.prompts.generation import parse_numbered_list
from selma.prompts.skills import TEMPLATE_GRAMMARS, Skill, builtin_skill, builtin_skill_names

SKILLS = {builtin_skill(name).grammar: builtin_skill(name) for name in builtin_skill_names()}
NUMBERED = re.compile(r"^(\d+)\. (\S.*)$")
TOKENS = re.compile(r"[a-z0-9]+")


def request(skill: Skill, seed: int, num_prompts: int = 20) -> LLMRequest:
    return LLMRequest((), "", skill, skill.examples, num_prompts, seed, call_id=seed)


def answer(skill: Skill, seed: int, num_prompts: int = 20) -> list[str]:
    text = TemplateBackend(LLMConfig()).complete(request(skill, seed, num_prompts))
    lines = text.split("\n")
    matches = [NUMBERED.match(line) for line in lines]
    assert all(matches), text
    assert [int(m.group(1)) for m in matches] == list(range(1, num_prompts + 1))
    return [m.group(2) for m in matches]


def many(grammar: str, calls: int = 10) -> list[str]:
    return [p for seed in range(calls) for p in answer(SKILLS[grammar], seed)]


def test_every_grammar_has_a_builtin_skill():
    assert set(GRAMMARS) == set(TEMPLATE_GRAMMARS) == set(SKILLS)


@pytest.mark.parametrize("grammar", TEMPLATE_GRAMMARS)
def test_each_grammar_returns_its_prompt_with_the_scene_it_was_built_from(grammar):
    text, scene = GRAMMARS[grammar](random.Random(0), SKILLS[grammar].word_limit)
    assert isinstance(text, str) and text and scene["entities"]
    assert all(e["noun"].lower() in text.lower() or e["plural"].lower() in text.lower() for e in scene["entities"])


def test_make_backend_defaults_to_template():
    backend = make_backend(LLMConfig())
    assert isinstance(backend, TemplateBackend) and backend.label == "template"
    backend.close()


@pytest.mark.parametrize("grammar", TEMPLATE_GRAMMARS)
@pytest.mark.parametrize("num_prompts", [1, 7, 20])
def test_numbered_list_has_exactly_num_prompts_lines(grammar, num_prompts):
    skill = SKILLS[grammar]
    text = TemplateBackend(LLMConfig()).complete(request(skill, 3, num_prompts))
    prompts = answer(skill, 3, num_prompts)
    assert len(prompts) == len(set(prompts)) == num_prompts
    parsed = parse_numbered_list(text, skill.word_limit)
    assert parsed.prompts == prompts and parsed.malformed == parsed.too_long == 0


@pytest.mark.parametrize("grammar", TEMPLATE_GRAMMARS)
def test_prompts_respect_word_limit_and_avoid_the_examples(grammar):
    skill = SKILLS[grammar]
    prompts = many(grammar)
    assert all(len(p.split()) <= skill.word_limit for p in prompts)
    assert not set(prompts) & set(skill.examples)
    assert all(p[0].isupper() or grammar == "art" for p in prompts)


@pytest.mark.parametrize("grammar", TEMPLATE_GRAMMARS)
def test_deterministic_per_seed_and_different_across_seeds(grammar):
    skill = SKILLS[grammar]
    assert answer(skill, 11) == answer(skill, 11)
    assert not set(answer(skill, 11)) & set(answer(skill, 12))


@pytest.mark.parametrize("word_limit", [12, 20])
def test_a_tighter_word_limit_is_obeyed(word_limit):
    skill = Skill("short", "Short counts.", SKILLS["counting"].examples[:3], word_limit=word_limit, grammar="counting")
    assert all(len(p.split()) <= word_limit for p in answer(skill, 5))


def test_paragraph_grows_with_the_word_limit():
    base = SKILLS["paragraph"]
    short = Skill("short_para", base.description, ("a b c", "d e f", "g h i"), word_limit=25, grammar="paragraph")
    assert max(len(p.split()) for p in answer(short, 1)) <= 25
    assert min(len(p.split()) for p in answer(base, 1)) > 25


def test_impossible_word_limit_is_an_error():
    with pytest.raises(ValueError, match="raise the skill's word_limit"):
        generate_prompts("paragraph", 3, word_limit=5, seed=0)


def test_unknown_grammar_is_an_error():
    with pytest.raises(ValueError, match="template grammar 'poetry' is not known"):
        generate_prompts("poetry", 3, word_limit=30, seed=0)


# --- English ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("noun", "expected"),
    [
        ("cat", "cats"), ("goose", "geese"), ("mouse", "mice"), ("sheep", "sheep"), ("child", "children"),
        ("person", "people"), ("knife", "knives"), ("wolf", "wolves"), ("box", "boxes"), ("peach", "peaches"),
        ("bus", "buses"), ("strawberry", "strawberries"), ("puppy", "puppies"), ("toy", "toys"),
        ("tomato", "tomatoes"), ("cactus", "cacti"), ("ox", "oxen"), ("teddy bear", "teddy bears"),
        ("police officer", "police officers"), ("wine glass", "wine glasses"), ("loaf of bread", "loaves of bread"),
        ("fisherman", "fishermen"), ("canoe", "canoes"),
    ],
)  # fmt: skip
def test_plural(noun, expected):
    assert plural(noun) == expected


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [("apple", "an"), ("red apple", "a"), ("umbrella", "an"), ("unicorn", "a"), ("hour", "an"), ("owl", "an"),
     ("one-eyed cat", "a"), ("elderly man", "an"), ("yellow hat", "a")],
)  # fmt: skip
def test_article(phrase, expected):
    assert article(phrase) == expected


# --- grammar-specific content ----------------------------------------------------------------------------------
def _heads() -> tuple[set[str], set[str]]:
    nouns = [n for cat in vocab().counting.categories.values() for n in cat.nouns]
    return {n.split()[-1] for n in nouns}, {plural(n).split()[-1] for n in nouns}


def test_counting_uses_counts_one_to_three_with_agreeing_nouns():
    singular, plurals = _heads()
    too_many = {"four", "five", "six", "seven", "eight", "nine", "ten", "dozen", "several", "many", "few", "some"}
    for prompt in many("counting"):
        tokens = TOKENS.findall(prompt.lower())
        assert not too_many & set(tokens) and not any(t.isdigit() for t in tokens), prompt
        counts = [i for i, t in enumerate(tokens) if t in ("one", "two", "three")]
        assert counts, prompt
        for i in counts:
            head = next((t for t in tokens[i + 1 : i + 6] if t in singular | plurals), None)
            assert head is not None, prompt
            if tokens[i] == "one":
                assert head in singular, prompt
            else:
                assert head in plurals, prompt


def test_text_prompts_quote_one_short_text():
    for prompt in many("text"):
        quoted = re.findall(r'"([^"]+)"', prompt)
        assert len(quoted) == 1 and prompt.count('"') == 2, prompt
        assert 1 <= len(quoted[0].split()) <= 5, prompt


def test_spatial_prompts_state_an_explicit_relation():
    s = vocab().spatial
    relations = (*s.lateral, *s.on, *s.under, *s.above, "between", "on the left")
    for prompt in many("spatial"):
        assert any(f" {r} " in prompt for r in relations), prompt


def test_attribute_prompts_bind_distinct_attributes_to_several_objects():
    o = vocab().objects
    colours = {w for c in (*o.colours, *o.animal_colours) for w in c.split() if w != "and"}
    materials = {m for ms in (*o.materials.values(), *vocab().attribute.garments.values()) for m in ms}
    fixed = {a for adjectives in o.fixed_adjectives.values() for a in adjectives}
    for prompt in many("attribute"):
        tokens = TOKENS.findall(prompt.lower())
        used = [t for t in tokens if t in colours | set(o.shapes)]
        assert len(used) == len(set(used)), f"an attribute word repeats: {prompt}"
        attributes = [t for t in tokens if t in colours | materials | fixed or t in " ".join(o.shapes)]
        assert len(attributes) >= 2, prompt


def test_paragraph_prompts_are_long_multi_sentence_descriptions():
    for prompt in many("paragraph"):
        assert prompt.count(". ") >= 2 and prompt.endswith("."), prompt
        assert len(prompt.split()) >= 25, prompt


def test_art_prompts_carry_comma_separated_modifiers():
    media = set(vocab().art.media)
    for prompt in many("art"):
        parts = prompt.split(", ")
        assert len(parts) >= 3 and any(p in media for p in parts), prompt


# --- diversity under SELMA's ROUGE-L filter --------------------------------------------------------------------
@pytest.mark.parametrize("grammar", TEMPLATE_GRAMMARS)
def test_diverse_under_rouge_l_filter(grammar):
    prompts = many(grammar, calls=20)  # 400 prompts, 20 per call as SELMA asks
    kept = sum(filter_diverse(prompts, threshold=0.8))
    assert kept >= 0.9 * len(prompts), f"{grammar}: kept only {kept} of {len(prompts)}"


# --- the vocabulary files --------------------------------------------------------------------------------------
def test_vocab_is_read_once_and_read_only():
    words = vocab()
    assert vocab() is words
    assert isinstance(words.spatial.lateral, tuple) and isinstance(words.counting.categories["pets"].nouns, tuple)
    with pytest.raises(TypeError):
        words.objects.materials["mug"] = ()  # type: ignore[index]


def test_every_vocab_file_is_a_field_and_every_field_a_file():
    assert {p.stem for p in VOCAB_DIR.glob("*.json")} == {f.name for f in dataclasses.fields(Vocabulary)}


def test_vocab_cross_references_resolve():
    v = vocab()
    for s in v.text.surfaces:
        assert s.mode in v.text.modes and (s.family == "shop" or s.family in v.text.fixed_texts), s
    assert set(v.text.styles) <= set(v.text.modes)
    assert set(v.whoops.creatures.values()) <= set(v.whoops.clashes)
    assert {kind for kinds in v.whoops.clashes.values() for kind in kinds} <= set(v.whoops.places)
    assert set(v.everyday.groups) <= set(v.counting.categories)
    for scene in v.spatial.scenes.values():
        assert bool(scene.hangers) == bool(scene.hang_over), scene


def _broken_vocab(tmp_path, name: str, edit) -> Path:
    folder = tmp_path / "vocab"
    shutil.copytree(VOCAB_DIR, folder)
    path = folder / name
    path.write_text(edit(path.read_text()))
    return folder


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("counting.json", lambda t: t.replace('"dog"', "7", 1), r"counting\.json: categories\.pets\.nouns\[0\]: "
         "expected a string, got a number"),
        ("spatial.json", lambda t: t.replace('"lateral"', '"laterals"', 1), r"spatial\.json: laterals: unknown key"),
        ("art.json", lambda t: t.replace('"leads"', '"about_leads"', 1), r"art\.json: about_leads: unknown key"),
        ("text.json", lambda t: t.replace('"mode": "sign"', '"mood": "sign"', 1), r"text\.json: surfaces\[0\]\.mood"),
        ("everyday.json", lambda t: t.replace('"outdoor"', '"outside"', 1),
         r"everyday\.json: activity_groups\[0\]\.setting: expected one of 'indoor', 'outdoor', got a string"),
        ("english.json", lambda t: t.replace('"irregular_plurals": {', '"irregular_plurals": [', 1)
         .replace('"buffaloes"\n  }', '"buffaloes"\n  ]'), r"english\.json: not valid JSON"),
        ("whoops.json", lambda t: t.replace('"a penguin": "cold"', '"a polar bear": "hot"', 1),
         r"whoops\.json: not valid JSON: key 'a polar bear' appears twice"),
        ("photos.json", lambda t: "[]", r"photos\.json: \(top level\): expected an object with the keys openers"),
    ],
)  # fmt: skip
def test_a_malformed_vocab_file_names_the_file_and_key(tmp_path, name, edit, message):
    with pytest.raises(VocabError, match=message):
        load_vocab(_broken_vocab(tmp_path, name, edit))


def test_a_missing_vocab_file_or_key_is_named(tmp_path):
    folder = _broken_vocab(tmp_path, "art.json", lambda t: t)
    (folder / "art.json").unlink()
    with pytest.raises(VocabError, match=r"art\.json: vocabulary file is missing"):
        load_vocab(folder)
    folder = _broken_vocab(tmp_path / "b", "paragraph.json", lambda t: t.replace('"bearded"', '"_"', 1))
    with pytest.raises(VocabError, match=r"paragraph\.json: _: unknown key"):
        load_vocab(folder)
