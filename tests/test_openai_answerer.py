"""The openai answerer against the fake OpenAI server as a vision model, through the real `openai` client.

The fake answers "Yes" iff the image's mean of the colour the question names (red, green or blue) is > 127, or,
for a question without a colour, its mean brightness; its logprobs put the two-way P(yes) at 0.8 for a yes and
0.2 for a no (see selma/testing/fake_openai_vision.py).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import re
import time

import openai
import pytest
from PIL import Image

from selma.errors import LLMError, SelmaError
from selma.evaluation.answerer import AnswererConfig
from selma.evaluation.answerer_factory import make_answerer
from selma.evaluation.openai_answerer import ANSWER_INSTRUCTION, OpenAIAnswerer, image_data_url
from selma.evaluation.scores import Question
from selma.llm.openai_plumbing import PLACEHOLDER_KEY
from selma.testing.fake_openai import FakeOpenAIServer
from selma.testing.fake_openai_behaviours import error, no_logprobs, no_vision, rate_limited, unauthorized
from selma.testing.fake_openai_vision import P_YES_IF_NO, P_YES_IF_YES, vision_answer

KEY = "sk-answerer-DISTINCTIVE-4b8e2d6a91"
ENV = "SOME_TEST_KEY"
RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def picture(rgb: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (8, 6), rgb)


def ask(text: str, qid: int = 0) -> Question:
    return Question(qid, "attribute", text)


@pytest.fixture
def answerers():
    """`answerers(server_or_url, **config)` builds the answerer through make_answerer (fast retries) and closes
    it after the test."""
    made = []

    def make(target: FakeOpenAIServer | str, **overrides) -> OpenAIAnswerer:
        base_url = target if isinstance(target, str) else target.base_url
        fields = dict(backend="openai", model="fake-vlm", base_url=base_url, api_key_env=ENV)
        answerer = make_answerer(AnswererConfig(**{**fields, **overrides}))
        answerer.retry_base_delay = 0.01
        made.append(answerer)
        return answerer

    yield make
    for answerer in made:
        answerer.close()


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    return KEY


# -- answers -------------------------------------------------------------------------------------------------


def test_p_yes_from_logprobs_is_the_two_way_probability_of_the_yes_and_no_spellings(openai_server, answerers, key_env):
    openai_server.expected_api_key = key_env
    answerer = answerers(openai_server)
    assert isinstance(answerer, OpenAIAnswerer) and answerer.label == "openai:fake-vlm"
    cases = [
        (RED, "Is the cube red?", P_YES_IF_YES, "Yes"),
        (RED, "Is the cube green?", P_YES_IF_NO, "No"),
        ((10, 20, 200), "Is there a BLUE sky?", P_YES_IF_YES, "Yes"),
        (WHITE, "Is there a cat?", P_YES_IF_YES, "Yes"),  # no colour named: brightness decides
        (BLACK, "Is there a cat?", P_YES_IF_NO, "No"),
    ]
    answers = answerer.answer([picture(c[0]) for c in cases], [ask(c[1], i) for i, c in enumerate(cases)])
    assert [a.p_yes for a in answers] == pytest.approx([c[2] for c in cases], abs=1e-9)
    assert [a.text for a in answers] == [c[3] for c in cases]
    assert (P_YES_IF_YES, P_YES_IF_NO) == (0.8, 0.2)


def test_each_pair_is_one_chat_request_with_the_image_as_a_png_data_url(openai_server, answerers, key_env):
    image = Image.new("RGB", (5, 4), (200, 30, 60))
    image.putpixel((1, 2), (0, 255, 0))
    (answer,) = answerers(openai_server).answer([image], [ask("Is the ball red?")])
    assert answer.p_yes == pytest.approx(0.8)
    (sent,) = openai_server.requests
    assert sent.path == "/v1/chat/completions" and sent.authorization == f"Bearer {KEY}"
    body = sent.body
    assert body["model"] == "fake-vlm" and body["temperature"] == 0 and 1 <= body["max_tokens"] <= 8
    assert body["logprobs"] is True and body["top_logprobs"] == 20
    (message,) = body["messages"]
    image_part, text_part = message["content"]
    assert message["role"] == "user" and text_part == {"type": "text", "text": "Is the ball red?" + ANSWER_INSTRUCTION}
    assert ANSWER_INSTRUCTION == " Answer with yes or no."
    url = image_part["image_url"]["url"]
    assert image_part["type"] == "image_url" and url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as received:
        assert received.format == "PNG" and received.convert("RGB").tobytes() == image.tobytes()


def test_without_logprobs_p_yes_falls_back_to_the_answer_text(answerers, key_env, caplog):
    with FakeOpenAIServer(logprobs=False) as server:
        answerer = answerers(server)
        with caplog.at_level(logging.WARNING, logger="selma.evaluation.openai_answerer"):
            answers = answerer.answer(
                [picture(RED), picture(RED), picture(GREEN)], [ask("red?"), ask("blue?"), ask("green?")]
            )
        assert all(r.body["logprobs"] is True for r in server.completion_requests)  # asked, but ignored
    assert [(a.p_yes, a.text) for a in answers] == [(1.0, "Yes"), (0.0, "No"), (1.0, "Yes")]
    assert caplog.text.count("sent no yes/no logprobs") == 1


def test_text_fallback_reads_yes_and_no_in_any_case_and_counts_other_answers_as_no(
    openai_server, answerers, key_env, caplog
):
    replies = ["yes, it is.", "NO.", "**Yes**", "Maybe, it is hard to tell.", "I cannot tell."]
    # The last two come with logprobs, but neither yes nor no is among the top tokens.
    openai_server.script(*(no_logprobs(r) for r in replies[:3]), *replies[3:])
    answerer = answerers(openai_server, batch_size=1)  # one at a time: the script is consumed in input order
    with caplog.at_level(logging.WARNING, logger="selma.evaluation.openai_answerer"):
        answers = answerer.answer([picture(RED)] * 5, [ask(f"Question {i}?", i) for i in range(5)])
    assert [a.p_yes for a in answers] == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert [a.text for a in answers] == replies
    assert caplog.text.count("neither yes nor no counts as no") == 1


@pytest.mark.parametrize("batch_size", [1, 4])
def test_a_refused_logprobs_parameter_is_dropped_once_and_the_text_decides(answerers, key_env, caplog, batch_size):
    colours = [RED, BLACK, WHITE, GREEN, RED, BLUE, WHITE, BLACK]
    with FakeOpenAIServer(reject_params=["logprobs"]) as server:
        answerer = answerers(server, batch_size=batch_size)
        with caplog.at_level(logging.WARNING, logger="selma.evaluation.openai_answerer"):
            answers = answerer.answer([picture(c) for c in colours], [ask(f"Is it bright? {i}") for i in range(8)])
        sent = [r.body for r in server.completion_requests]
    assert [a.p_yes for a in answers] == [float(sum(c) / 3 > 127) for c in colours]
    refused = [b for b in sent if "logprobs" in b]
    assert 1 <= len(refused) <= batch_size and len(sent) == len(refused) + len(colours)
    assert all("top_logprobs" not in b for b in sent if b not in refused)
    assert caplog.text.count("does not take `logprobs`, `top_logprobs`") == 1


def test_a_model_that_refuses_max_tokens_gets_max_completion_tokens(answerers, key_env):
    with FakeOpenAIServer(reject_params=["max_tokens"]) as server:
        (answer,) = answerers(server).answer([picture(RED)], [ask("red?")])
        last = server.completion_requests[-1].body
    assert answer.p_yes == pytest.approx(0.8) and "max_tokens" not in last and 1 <= last["max_completion_tokens"] <= 8


@pytest.mark.parametrize("batch_size", [1, 4])
def test_pairs_run_batch_size_at_a_time_and_answers_keep_the_input_order(answerers, key_env, batch_size):
    def late_first(body: dict) -> str:  # earlier questions answer later, so requests finish out of order
        number = int(re.search(r"Question (\d+)", json.dumps(body)).group(1))
        time.sleep((10 - number) * 0.01)
        return vision_answer(body)

    colours = [RED if i % 3 else GREEN for i in range(10)]
    questions = [ask(f"Question {i}: is it red?", i) for i in range(10)]
    with FakeOpenAIServer(vision_reply=late_first) as server:
        answers = answerers(server, batch_size=batch_size).answer([picture(c) for c in colours], questions)
        assert server.max_in_flight == batch_size and len(server.completion_requests) == 10
    assert [a.p_yes for a in answers] == pytest.approx([0.8 if c == RED else 0.2 for c in colours])
    assert [a.text for a in answers] == ["Yes" if c == RED else "No" for c in colours]


def test_transient_failures_are_retried(openai_server, answerers, key_env, caplog):
    openai_server.script(503, rate_limited(retry_after=0.01))
    with caplog.at_level(logging.WARNING, logger="selma.evaluation.openai_answerer"):
        (answer,) = answerers(openai_server).answer([picture(GREEN)], [ask("green?")])
    assert answer.p_yes == pytest.approx(0.8) and len(openai_server.completion_requests) == 3
    assert "HTTP 503" in caplog.text and "attempt 3 of 5" in caplog.text


def test_empty_input_asks_nothing_and_mismatched_lengths_are_refused(openai_server, answerers, key_env):
    answerer = answerers(openai_server)
    assert answerer.answer([], []) == []
    with pytest.raises(ValueError, match="2 images but 1 questions"):
        answerer.answer([picture(RED), picture(RED)], [ask("red?")])
    assert openai_server.requests == []


# -- errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "refusal",
    [
        "server",
        no_vision(),
        error(400, "Model does not support images. Please use a model that does."),
        error(400, "fake-vlm is not a multimodal model"),
    ],
    ids=["server-without-vision", "scripted-openai-400", "lm-studio-style", "vllm-style"],
)
def test_a_model_without_vision_gets_an_error_that_says_to_pick_a_vision_model(answerers, key_env, refusal):
    with FakeOpenAIServer(vision=refusal != "server") as server:
        if refusal != "server":
            server.script(refusal)
        with pytest.raises(LLMError, match="has no vision") as caught:
            answerers(server).answer([picture(RED)], [ask("red?")])
        assert len(server.completion_requests) == 1  # not retried
    message = str(caught.value)
    assert isinstance(caught.value, SelmaError) and "Pick a vision model" in message and "'fake-vlm'" in message


def test_an_image_the_server_cannot_read_is_not_called_a_missing_vision(openai_server, answerers, key_env):
    openai_server.script(error(400, "You uploaded an unsupported image. Please make sure your image is valid."))
    with pytest.raises(LLMError, match="could not read the image sent to model 'fake-vlm'") as caught:
        answerers(openai_server).answer([picture(RED)], [ask("red?")])
    assert "no vision" not in str(caught.value) and "RGB PNG" in str(caught.value)


def test_missing_key_for_the_real_openai_names_the_variable(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(LLMError, match=f"environment variable {ENV} is not set") as caught:
        make_answerer(AnswererConfig(backend="openai", model="fake-vlm", api_key_env=ENV))
    assert f"export {ENV}=..." in str(caught.value) and "base_url" in str(caught.value)
    with pytest.raises(LLMError, match="api_key_env is empty"):
        make_answerer(AnswererConfig(backend="openai", model="fake-vlm", api_key_env=""))


def test_unset_key_for_a_server_that_wants_one_says_what_to_export(openai_server, answerers, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    openai_server.expected_api_key = KEY
    with pytest.raises(
        LLMError, match=rf"HTTP 401\). {ENV} is not set and this server wants a key: run `export {ENV}="
    ):
        answerers(openai_server).answer([picture(RED)], [ask("red?")])
    assert openai_server.requests[0].authorization == f"Bearer {PLACEHOLDER_KEY}"


@pytest.mark.parametrize("status", [401, 403])
def test_a_rejected_key_names_the_env_variable_not_the_key(openai_server, answerers, key_env, status):
    openai_server.script(unauthorized(f"Incorrect API key provided: {KEY}") if status == 401 else error(403, KEY))
    with pytest.raises(LLMError, match=rf"HTTP {status}\). Check the key in the environment variable {ENV}") as caught:
        answerers(openai_server).answer([picture(RED)], [ask("red?")])
    assert KEY not in str(caught.value) and len(openai_server.completion_requests) == 1


def test_an_unreachable_server_is_named_by_its_url(answerers, key_env):
    with FakeOpenAIServer() as server:
        dead_url = server.base_url
    answerer = answerers(dead_url)
    answerer.max_retries = 1
    with pytest.raises(LLMError, match=f"Could not reach the answerer's server at {dead_url}") as caught:
        answerer.answer([picture(RED)], [ask("red?")])
    assert "2 attempts" in str(caught.value) and "server is running" in str(caught.value)


def test_an_unknown_model_is_named(answerers, key_env):
    with FakeOpenAIServer(models=["llava"]) as server:
        with pytest.raises(LLMError, match=r"has no model 'fake-vlm'.*/v1/models"):
            answerers(server).answer([picture(RED)], [ask("red?")])


def test_the_key_never_reaches_the_label_logs_errors_answers_or_request_bodies(
    openai_server, answerers, key_env, caplog
):
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    answerer = answerers(openai_server, batch_size=1)
    assert KEY not in answerer.label and KEY not in repr(answerer) and KEY not in repr(answerer.config)
    echoes = [
        error(400, f"image_url rejected for {KEY}"),
        error(404, f"model not found for {KEY}"),
        error(422, f"bad request from {KEY}"),
        unauthorized(f"Incorrect API key provided: {KEY}"),
    ]
    messages = []
    for echo in echoes:
        openai_server.script(echo)
        with pytest.raises(LLMError) as caught:
            answerer.answer([picture(RED)], [ask("red?")])
        messages.append(str(caught.value))
    openai_server.script(error(503, f"overloaded, {KEY}"), no_logprobs(f"Hmm, {KEY}"))
    answerer.max_retries = 1
    answers = answerer.answer([picture(RED), picture(RED)], [ask("red?"), ask("red?")])
    assert all(KEY not in m and "***" in m for m in messages[:3]) and KEY not in messages[3]
    assert answers[0].p_yes == 0.0 and answers[0].text == "Hmm, ***" and answers[1].text == "Yes"
    assert KEY not in caplog.text and all(KEY not in r.getMessage() for r in caplog.records)
    assert "***" in caplog.text  # the echoing 503 and the odd answer were logged, redacted
    for request in openai_server.requests:
        assert KEY not in json.dumps(request.body)
        assert [k.lower() for k, v in request.headers.items() if KEY in v] == ["authorization"]
        assert request.authorization == f"Bearer {KEY}"


# -- the fake server as a vision model -----------------------------------------------------------------------


def test_fake_server_sends_as_many_top_logprobs_as_asked_and_refuses_a_broken_image(openai_server):
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-x", max_retries=0)
    try:

        def content(url: str, text: str = "Is it red?") -> list[dict]:
            return [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}]

        response = client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": content(image_data_url(picture(RED)))}],
            logprobs=True,
            top_logprobs=2,
        )
        first = response.choices[0].logprobs.content[0]
        assert response.choices[0].message.content == "Yes" and first.token == "Yes"
        assert [t.token for t in first.top_logprobs] == ["Yes", " yes"]
        assert [math.exp(t.logprob) for t in first.top_logprobs] == pytest.approx([0.5, 0.12])
        plain = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": content(image_data_url(picture(RED)), "green?")}]
        )
        assert plain.choices[0].message.content == "No" and plain.choices[0].logprobs is None
        for url in ("data:image/png;base64,bm90IGFuIGltYWdl", "https://example.com/cat.png"):
            with pytest.raises(openai.BadRequestError, match="unsupported image"):
                client.chat.completions.create(model="m", messages=[{"role": "user", "content": content(url)}])
    finally:
        client.close()
