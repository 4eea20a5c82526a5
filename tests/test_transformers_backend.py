"""The local causal-LM backend on a tiny random GPT-2 (its answers are gibberish: we test plumbing)."""

from __future__ import annotations

import pytest

from selma.errors import LLMError
from selma.llm import LLMConfig, make_backend
from selma.prompts.generation import PromptGenConfig, build_request, generate_prompts
from selma.prompts.skills import builtin_skill


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from selma.testing.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("lm") / "tiny-lm")


def test_answers_are_seeded_and_run_through_the_chat_template(tiny_lm):
    backend = make_backend(LLMConfig(backend="transformers", model=str(tiny_lm), max_tokens=24, device="cpu"))
    skill = builtin_skill("counting")
    request = build_request(skill, list(skill.examples), 20, seed=7, call_id=1)
    first, again = backend.complete(request), backend.complete(request)
    assert isinstance(first, str) and first == again
    other = backend.complete(build_request(skill, list(skill.examples), 20, seed=8, call_id=2))
    assert other != first
    backend.close()


def test_generation_with_gibberish_stops_at_the_budget_and_counts_bad_lines(tiny_lm, tmp_path):
    llm = LLMConfig(backend="transformers", model=str(tiny_lm), max_tokens=24, device="cpu")
    result = generate_prompts(builtin_skill("counting"), llm, tmp_path, PromptGenConfig(count=5, max_calls=2))
    assert result.calls == 2
    assert result.malformed_lines + result.too_long + result.candidates > 0


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(LLMError, match="does not exist"):
        make_backend(LLMConfig(backend="transformers", model=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(LLMError, match="no config.json"):
        make_backend(LLMConfig(backend="transformers", model=str(tmp_path / "empty")))
