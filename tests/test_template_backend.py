"""The offline template backend: format, limits, determinism, grammar-specific content and diversity."""

from __future__ import annotations

import re

import pytest

from selma.prompts.diversity import filter_diverse
from selma.llm import LLMConfig, LLMRequest, make_backend
from selma.llm import template_vocab as V
from selma.llm.template_backend import GRAMMARS, TemplateBackend, article, generate_prompts, plural
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
    nouns = [n for cat in V.COUNT_CATEGORIES.values() for n in cat["nouns"]]
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
    relations = (*V.SPATIAL_LATERAL, *V.SPATIAL_ON, *V.SPATIAL_UNDER, *V.SPATIAL_ABOVE, "between", "on the left")
    for prompt in many("spatial"):
        assert any(f" {r} " in prompt for r in relations), prompt


def test_attribute_prompts_bind_distinct_attributes_to_several_objects():
    colours = {w for c in (*V.COLOURS, *V.ANIMAL_COLOURS) for w in c.split() if w != "and"}
    materials = {m for ms in (*V.THINGS.values(), *V.GARMENTS.values()) for m in ms}
    fixed = {a for adjectives in V.FIXED_ADJECTIVES.values() for a in adjectives}
    for prompt in many("attribute"):
        tokens = TOKENS.findall(prompt.lower())
        used = [t for t in tokens if t in colours | set(V.SHAPES)]
        assert len(used) == len(set(used)), f"an attribute word repeats: {prompt}"
        attributes = [t for t in tokens if t in colours | materials | fixed or t in " ".join(V.SHAPES)]
        assert len(attributes) >= 2, prompt


def test_paragraph_prompts_are_long_multi_sentence_descriptions():
    for prompt in many("paragraph"):
        assert prompt.count(". ") >= 2 and prompt.endswith("."), prompt
        assert len(prompt.split()) >= 25, prompt


def test_art_prompts_carry_comma_separated_modifiers():
    media = set(V.ART_MEDIA)
    for prompt in many("art"):
        parts = prompt.split(", ")
        assert len(parts) >= 3 and any(p in media for p in parts), prompt


# --- diversity under SELMA's ROUGE-L filter --------------------------------------------------------------------
@pytest.mark.parametrize("grammar", TEMPLATE_GRAMMARS)
def test_diverse_under_rouge_l_filter(grammar):
    prompts = many(grammar, calls=20)  # 400 prompts, 20 per call as SELMA asks
    kept = sum(filter_diverse(prompts, threshold=0.8))
    assert kept >= 0.9 * len(prompts), f"{grammar}: kept only {kept} of {len(prompts)}"
