"""SELMA's prompt-generation loop: in-context requests, parsing, filtering, files, resume, budget."""

from __future__ import annotations

import json
import logging
import random
import threading

import pytest

from selma.atomic_files import read_jsonl
from selma.llm import LLMConfig
from selma.prompts.diversity import rouge_l_f
from selma.prompts.generation import (
    PromptGenConfig,
    generate_prompts,
    load_prompts,
    parse_numbered_list,
    prompts_path,
    render_meta_prompt,
)
from selma.prompts.skills import Skill, builtin_skill

SKILL = Skill(
    name="toys",
    description="Toys on a shelf.",
    examples=("a red toy car on a shelf", "two wooden blocks beside a doll", "a plush bear under a lamp"),
    rules=("Mention a toy.",),
    word_limit=12,
)


class ScriptedBackend:
    """Answers from a function of the request; records every request (thread-safe)."""

    label = "scripted"

    def __init__(self, answer):
        self.answer = answer
        self.requests = []
        self.lock = threading.Lock()

    def complete(self, request):
        with self.lock:
            self.requests.append(request)
        return self.answer(request)

    def close(self):
        pass


def unique_answer(request):
    """20 prompts that rarely resemble each other: five independent slots of twelve words each."""
    rng = random.Random(request.seed)
    toys = "kite robot yo-yo train puzzle drum boat ball truck top doll rocket".split()
    colours = "red blue green pink black white gold grey brown teal violet orange".split()
    places = "shelf rug bed desk chair box floor table porch stairs garden attic".split()
    lines = []
    for i in range(request.num_prompts):
        toy, toy2 = rng.sample(toys, 2)
        colour, colour2 = rng.sample(colours, 2)
        lines.append(f"{i + 4}. a {colour} {toy} near a {colour2} {toy2} in the {rng.choice(places)}")
    return "\n".join(lines)


def test_meta_prompt_has_rules_examples_and_the_ask():
    text = render_meta_prompt(SKILL, ["ex one", "ex two", "ex three"], 20)
    assert "Toys on a shelf." in text
    assert "1. Mention a toy." in text and "2. Each description has at most 12 words." in text
    assert "1. ex one\n2. ex two\n3. ex three" in text
    assert "Write 20 more descriptions" in text and "from 4 to 23" in text


@pytest.mark.parametrize(
    ("answer", "prompts", "malformed", "too_long"),
    [
        ("4. a cat\n5) a dog\n(6) a cow", ["a cat", "a dog", "a cow"], 0, 0),
        ("Sure! Here they are:\n\n4. a cat\n5.\n- a dog", ["a cat"], 3, 0),
        ('4. "a quoted cat"\n5. “curly quotes”', ["a quoted cat", "curly quotes"], 0, 0),
        ("4. " + "word " * 13, [], 0, 1),
        ("", [], 0, 0),
    ],
)
def test_parse_numbered_list(answer, prompts, malformed, too_long):
    parsed = parse_numbered_list(answer, word_limit=12)
    assert (parsed.prompts, parsed.malformed, parsed.too_long) == (prompts, malformed, too_long)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.01, float("nan")])
def test_threshold_outside_unit_interval_is_rejected(bad):
    with pytest.raises(ValueError, match=r"threshold=.* is outside \(0, 1\]"):
        PromptGenConfig(threshold=bad)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("count", 0, "count=0 must be >= 1"),
        ("prompts_per_call", 0, "prompts_per_call=0"),
        ("examples_per_call", 0, "examples_per_call=0"),
        ("concurrency", 0, "concurrency=0"),
        ("max_calls", -1, "max_calls=-1"),
    ],
)
def test_config_validation(field, value, match):
    with pytest.raises(ValueError, match=match):
        PromptGenConfig(**{field: value})


def test_template_run_writes_diverse_records_with_exact_max_scores(tmp_path):
    skill = builtin_skill("counting")
    result = generate_prompts(skill, LLMConfig(), tmp_path, PromptGenConfig(count=60, threshold=0.8))
    records = read_jsonl(prompts_path(tmp_path, "counting"))
    assert result.complete and len(records) == 60 == len(result.prompts)
    assert json.loads((tmp_path / "skills" / "counting.json").read_text())["name"] == "counting"
    pool = list(skill.examples)
    for record in records:
        expected = max(rouge_l_f(record["text"], other) for other in pool)
        assert record["max_rouge_l"] == expected <= 0.8
        assert record["skill"] == "counting" and record["source"] == "template"
        assert len(record["text"].split()) <= skill.word_limit
        assert record["scene"]["entities"], "a template prompt carries the scene it was built from"
        pool.append(record["text"])
    assert len({r["text"] for r in records}) == 60


def test_same_file_whatever_the_concurrency(tmp_path):
    skill = builtin_skill("spatial")
    one = generate_prompts(skill, LLMConfig(), tmp_path / "a", PromptGenConfig(count=50, concurrency=1))
    eight = generate_prompts(skill, LLMConfig(), tmp_path / "b", PromptGenConfig(count=50, concurrency=8))
    assert one.prompts == eight.prompts
    assert one.path.read_bytes() == eight.path.read_bytes()


def test_each_call_shows_three_examples_from_seeds_and_accepted_and_asks_for_20(tmp_path):
    backend = ScriptedBackend(unique_answer)
    result = generate_prompts(SKILL, backend, tmp_path, PromptGenConfig(count=200, concurrency=1))
    accepted = set(load_prompts(tmp_path, "toys"))
    assert result.complete and len(backend.requests) == result.calls >= 10
    for request in backend.requests:
        assert request.num_prompts == 20 and len(request.examples) == 3
        assert "Write 20 more" in request.prompt and request.messages[-1]["content"] == request.prompt
        assert set(request.examples) <= set(SKILL.examples) | accepted
    later = {e for r in backend.requests[5:] for e in r.examples}
    assert later & accepted, "examples must also be drawn from accepted prompts"


def test_resume_tops_up_without_duplicates_or_loss(tmp_path):
    skill = builtin_skill("attribute_binding")
    first = generate_prompts(skill, LLMConfig(), tmp_path, PromptGenConfig(count=25))
    second = generate_prompts(skill, LLMConfig(), tmp_path, PromptGenConfig(count=70))
    assert second.prompts[:25] == first.prompts
    assert len(second.prompts) == 70 == len(set(second.prompts))
    assert second.added == 45
    again = generate_prompts(skill, LLMConfig(), tmp_path, PromptGenConfig(count=70))
    assert again.calls == 0 and again.prompts == second.prompts


def test_killed_mid_way_resumes_to_exactly_the_target(tmp_path):
    class Killed(Exception):
        pass

    calls = []

    def kill_after_two(done, total):
        calls.append(done)
        if len(calls) == 2:
            raise Killed

    backend = ScriptedBackend(unique_answer)
    with pytest.raises(Killed):
        generate_prompts(SKILL, backend, tmp_path, PromptGenConfig(count=100, concurrency=4), kill_after_two)
    saved = load_prompts(tmp_path, "toys")
    assert len(saved) == calls[-1] > 20, "what the two finished calls kept is on disk"
    path = prompts_path(tmp_path, "toys")
    with open(path, "a", encoding="utf-8") as f:  # a torn line, as a kill during a write would leave
        f.write('{"text": "half a rec')
    result = generate_prompts(SKILL, ScriptedBackend(unique_answer), tmp_path, PromptGenConfig(count=100))
    assert result.prompts[: len(saved)] == saved
    assert len(result.prompts) == 100 == len(set(result.prompts))
    assert len(read_jsonl(path)) == 100


def test_malformed_lines_are_skipped_and_counted(tmp_path):
    def answer(request):
        return (
            f"Here you go:\n4. a kite number {request.call_id}\nnot numbered\n5.\n6. a drum number {request.call_id}"
        )

    result = generate_prompts(SKILL, ScriptedBackend(answer), tmp_path, PromptGenConfig(count=4))
    assert result.complete and result.malformed_lines == 3 * result.calls


def test_unreachable_count_stops_at_the_budget_and_keeps_what_it_has(tmp_path, caplog):
    backend = ScriptedBackend(lambda request: "4. the same toy every time\n5. the same toy every time")
    with caplog.at_level(logging.WARNING):
        result = generate_prompts(SKILL, backend, tmp_path, PromptGenConfig(count=50, max_calls=6))
    assert not result.complete
    assert result.calls == len(backend.requests) == 6
    assert load_prompts(tmp_path, "toys") == ["the same toy every time"]
    assert "stopped at 1 of 50 prompts" in caplog.text and "call budget" in caplog.text


def test_identical_candidates_are_dropped_even_at_threshold_one(tmp_path):
    backend = ScriptedBackend(lambda request: "4. A red toy car on a shelf\n5. a brand new toy\n6. A brand  NEW toy")
    result = generate_prompts(SKILL, backend, tmp_path, PromptGenConfig(count=5, threshold=1.0, max_calls=2))
    assert result.prompts == ["a brand new toy"]


def test_openai_backend_end_to_end_keeps_the_key_out_of_files(tmp_path, openai_server, monkeypatch, caplog):
    key = "sk-test-SECRET-0123456789abcdefghij"
    monkeypatch.setenv("SELMA_TEST_KEY", key)
    openai_server.expected_api_key = key
    llm = LLMConfig(backend="openai", model="fake-gpt", base_url=openai_server.base_url, api_key_env="SELMA_TEST_KEY")
    with caplog.at_level(logging.DEBUG):
        result = generate_prompts(SKILL, llm, tmp_path, PromptGenConfig(count=30, concurrency=4))
    assert result.complete and len(set(result.prompts)) == 30
    assert {r["source"] for r in read_jsonl(result.path)} == {"openai:fake-gpt"}
    assert not any("scene" in r for r in read_jsonl(result.path)), "only the template backend records scenes"
    assert all(r.body["model"] == "fake-gpt" for r in openai_server.completion_requests)
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert key not in file.read_text(encoding="utf-8")
    assert key not in caplog.text


def test_a_malformed_server_answer_costs_one_call_not_the_run(tmp_path, openai_server, monkeypatch):
    from selma.testing.fake_openai_behaviours import malformed

    openai_server.script(malformed("no_choices"), malformed("empty_content"))
    llm = LLMConfig(backend="openai", model="m", base_url=openai_server.base_url, retry_base_delay=0.01)
    result = generate_prompts(SKILL, llm, tmp_path, PromptGenConfig(count=30, concurrency=1))
    assert result.complete and result.failed_calls == 2 and result.calls >= 4
