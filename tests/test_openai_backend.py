"""The openai backend against a real local HTTP server, through the real `openai` client."""

from __future__ import annotations

import logging
import threading
import traceback

import openai
import pytest

from selma.errors import LLMError
from selma.llm import LLMConfig, LLMRequest, make_backend
from selma.llm.openai_backend import OpenAIBackend
from selma.llm.openai_plumbing import PLACEHOLDER_KEY, retry_after_seconds
from selma.testing.fake_openai import FakeOpenAIServer
from selma.testing.fake_openai_behaviours import (
    MALFORMED_KINDS,
    disconnect,
    error,
    malformed,
    rate_limited,
    server_error,
    slow,
    unauthorized,
)

KEY = "sk-test-DISTINCTIVE-7f3a9c1e5b"
ENV = "SELMA_TEST_OPENAI_KEY"
REPLY = "1. a red cube on a glass table\n2. three owls on a fence"
MESSAGES = ({"role": "system", "content": "You write prompts."}, {"role": "user", "content": "Write 2 prompts."})


def make_request(seed: int = 7) -> LLMRequest:
    return LLMRequest(
        messages=MESSAGES,
        prompt="You write prompts.\nWrite 2 prompts.\n1.",
        skill=None,
        examples=("a cat", "a dog", "a cow"),
        num_prompts=2,
        seed=seed,
        call_id=0,
    )


@pytest.fixture
def backends():
    """`backends(server_or_url, **config)` builds an OpenAIBackend (fast retries) and closes it after the test."""
    made = []

    def make(target: FakeOpenAIServer | str, **overrides) -> OpenAIBackend:
        base_url = target if isinstance(target, str) else target.base_url
        fields = dict(backend="openai", model="fake-gpt", base_url=base_url, api_key_env=ENV, retry_base_delay=0.01)
        backend = OpenAIBackend(LLMConfig(**{**fields, **overrides}))
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    return KEY


# -- round trips ---------------------------------------------------------------------------------------------


def test_chat_round_trip_sends_model_messages_sampling_and_the_env_key(openai_server, backends, key_env):
    openai_server.expected_api_key = key_env
    openai_server.script(REPLY)
    backend = backends(openai_server, temperature=0.7, top_p=0.9, max_tokens=321)
    assert backend.complete(make_request(seed=11)) == REPLY
    (sent,) = openai_server.requests
    assert sent["path"] == "/v1/chat/completions" and sent["authorization"] == f"Bearer {key_env}"
    body = sent["body"]
    assert body["model"] == "fake-gpt" and body["messages"] == list(MESSAGES)
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.7, 0.9, 321, 11)
    assert backend.label == "openai:fake-gpt"


def test_legacy_completions_round_trip_sends_the_prompt(openai_server, backends, key_env):
    openai_server.script(REPLY)
    backend = backends(openai_server, api="completions", max_tokens=64, temperature=0.2)
    assert backend.complete(make_request()) == REPLY
    (sent,) = openai_server.requests
    assert sent["path"] == "/v1/completions" and sent["authorization"] == f"Bearer {key_env}"
    body = sent["body"]
    assert body["prompt"] == make_request().prompt and "messages" not in body
    assert (body["model"], body["max_tokens"], body["temperature"]) == ("fake-gpt", 64, 0.2)


def test_make_backend_builds_the_openai_backend(openai_server, key_env):
    config = LLMConfig(backend="openai", model="fake-gpt", base_url=openai_server.base_url, api_key_env=ENV)
    backend = make_backend(config)
    try:
        assert isinstance(backend, OpenAIBackend) and backend.label == "openai:fake-gpt"
        assert backend.complete(make_request()).startswith("1. ")
    finally:
        backend.close()


def test_default_reply_is_a_numbered_list_of_as_many_distinct_prompts_as_asked(openai_server, backends, key_env):
    text = backends(openai_server).complete(make_request())  # the user message says "Write 2"
    lines = text.splitlines()
    assert [line.split(".")[0] for line in lines] == ["1", "2"] and len(set(lines)) == 2
    body = {"messages": [{"role": "user", "content": "Here are examples. Write 20 more descriptions."}]}
    assert len(set(openai_server.default_reply(body).splitlines())) == 20
    assert len(openai_server.default_reply({"prompt": "no count here"}).splitlines()) == 20


def test_fake_server_lists_models_and_serves_concurrent_requests(openai_server):
    openai_server.latency = 0.3
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="k", max_retries=0)
    try:
        assert [m.id for m in client.models.list().data] == ["fake-model"]
        calls = [
            threading.Thread(target=client.chat.completions.create, kwargs=dict(model="m", messages=list(MESSAGES)))
            for _ in range(6)
        ]
        for call in calls:
            call.start()
        for call in calls:
            call.join()
    finally:
        client.close()
    assert len(openai_server.completion_requests) == 6 and openai_server.max_in_flight >= 2


# -- retries -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [429, 500, server_error(502), server_error(503), rate_limited(retry_after=0.02), disconnect(), slow(1.0)],
    ids=["429", "500", "502", "503", "429-retry-after", "disconnect", "timeout"],
)
def test_transient_failure_is_retried_then_succeeds(openai_server, backends, key_env, caplog, failure):
    openai_server.script(failure, REPLY)
    with caplog.at_level(logging.WARNING, logger="selma.llm.openai_backend"):
        assert backends(openai_server, timeout=0.3).complete(make_request()) == REPLY
    assert len(openai_server.completion_requests) == 2
    assert "retrying in" in caplog.text and "attempt 2 of 6" in caplog.text


def test_retry_after_from_the_server_sets_the_delay(openai_server, backends, key_env, caplog):
    openai_server.script(rate_limited(retry_after=0.25), REPLY)
    with caplog.at_level(logging.WARNING, logger="selma.llm.openai_backend"):
        backends(openai_server, retry_base_delay=5.0).complete(make_request())
    assert "HTTP 429" in caplog.text and "retrying in 0.25 s" in caplog.text


def test_backoff_doubles_with_jitter_and_is_capped(backends):
    backend = backends("http://127.0.0.1:9/v1", retry_base_delay=1.0)
    for attempt in range(1, 5):
        ceiling = 2.0 ** (attempt - 1)
        assert all(ceiling / 2 <= backend._retry_delay(attempt, None) <= ceiling for _ in range(50))
    assert backend._retry_delay(20, None) <= 60.0
    assert backend._retry_delay(1, retry_after=3.0) == 3.0 and backend._retry_delay(1, retry_after=1e6) == 60.0


@pytest.mark.parametrize(
    "headers, seconds",
    [({"retry-after-ms": "250", "retry-after": "1"}, 0.25), ({"retry-after": "2"}, 2.0), ({"retry-after": "x"}, None)],
)
def test_retry_after_header_parsing(headers, seconds):
    assert retry_after_seconds(headers) == seconds


def test_retries_exhausted_says_how_many_attempts_and_the_last_status(openai_server, backends, key_env):
    openai_server.script(500, 502, 503, REPLY)
    with pytest.raises(LLMError, match=r"gave up after 3 attempts; last error: HTTP 503"):
        backends(openai_server, max_retries=2).complete(make_request())
    assert len(openai_server.completion_requests) == 3


def test_slow_beyond_timeout_is_retried_then_fails(openai_server, backends, key_env):
    openai_server.script(slow(2.0), slow(2.0), REPLY)
    with pytest.raises(LLMError, match=r"gave up after 2 attempts; last error: no answer within 0.2 s \(timeout\)"):
        backends(openai_server, timeout=0.2, max_retries=1).complete(make_request())
    assert len(openai_server.completion_requests) == 2


def test_unreachable_server_names_the_base_url(backends, key_env):
    with FakeOpenAIServer() as server:
        dead_url = server.base_url
    with pytest.raises(LLMError, match="Could not reach the LLM server at " + dead_url) as caught:
        backends(dead_url, max_retries=1).complete(make_request())
    assert "2 attempts" in str(caught.value) and "server is running" in str(caught.value)
    assert "Connection refused" in str(caught.value)


def test_unreachable_openai_api_suggests_checking_the_network(backends, key_env, monkeypatch):
    with FakeOpenAIServer() as server:
        dead_url = server.base_url
    monkeypatch.setenv("OPENAI_BASE_URL", dead_url)  # the client's own override when base_url is empty
    with pytest.raises(LLMError, match=f"Could not reach the OpenAI API at {dead_url}.*network connection"):
        backends("", max_retries=0).complete(make_request())


# -- errors that are not retried -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_names_the_env_variable_not_the_key(openai_server, backends, key_env, status):
    openai_server.script(unauthorized() if status == 401 else error(403, "forbidden"))
    with pytest.raises(LLMError, match=rf"HTTP {status}.*{ENV}") as caught:
        backends(openai_server).complete(make_request())
    assert KEY not in str(caught.value) and f"export {ENV}=" in str(caught.value)
    assert len(openai_server.completion_requests) == 1


def test_wrong_key_gets_401_from_a_server_that_checks_keys(openai_server, backends, key_env):
    openai_server.expected_api_key = "sk-the-right-one"
    with pytest.raises(LLMError, match=f"rejected the API key.*Check the key in the environment variable {ENV}"):
        backends(openai_server).complete(make_request())


def test_unset_key_for_a_server_that_wants_one_says_what_to_export(openai_server, backends, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    openai_server.expected_api_key = "sk-the-right-one"
    with pytest.raises(LLMError, match=f"{ENV} is not set and this server wants a key: run `export {ENV}=...`"):
        backends(openai_server).complete(make_request())


def test_unknown_model_names_the_model(backends, key_env):
    with FakeOpenAIServer(models=["llama3"]) as server:
        with pytest.raises(LLMError, match="has no model 'fake-gpt'.*ollama pull"):
            backends(server).complete(make_request())
        assert len(server.completion_requests) == 1


def test_base_url_without_v1_says_the_endpoint_is_missing(openai_server, backends, key_env):
    bare = openai_server.base_url.removesuffix("/v1")
    with pytest.raises(LLMError, match="has no chat/completions endpoint.*ends with /v1"):
        backends(bare).complete(make_request())


def test_other_bad_request_is_not_retried_and_quotes_the_server(openai_server, backends, key_env):
    openai_server.script(error(400, "max_tokens is too large: 99999"))
    with pytest.raises(LLMError, match="HTTP 400: max_tokens is too large"):
        backends(openai_server).complete(make_request())
    assert len(openai_server.completion_requests) == 1


@pytest.mark.parametrize("api", ["chat", "completions"])
@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_malformed_answer_raises_llm_error(openai_server, backends, key_env, kind, api):
    openai_server.script(malformed(kind))
    with pytest.raises(LLMError, match="sent a malformed answer"):
        backends(openai_server, api=api).complete(make_request())
    assert len(openai_server.completion_requests) == 1


# -- server quirks -------------------------------------------------------------------------------------------


def test_server_that_refuses_seed_gets_requests_without_it(backends, key_env, caplog):
    with FakeOpenAIServer(reject_params=["seed"]) as server:
        backend = backends(server)
        with caplog.at_level(logging.WARNING, logger="selma.llm.openai_backend"):
            assert backend.complete(make_request()).startswith("1. ")
            assert backend.complete(make_request()).startswith("1. ")
        assert ["seed" in r["body"] for r in server.completion_requests] == [True, False, False]
    assert caplog.text.count("does not take `seed`") == 1


def test_model_that_refuses_max_tokens_gets_max_completion_tokens(backends, key_env):
    with FakeOpenAIServer(reject_params=["max_tokens"]) as server:
        assert backends(server, max_tokens=100).complete(make_request()).startswith("1. ")
        assert server.completion_requests[-1]["body"]["max_completion_tokens"] == 100


# -- the API key ---------------------------------------------------------------------------------------------


def test_missing_key_for_the_real_openai_says_what_to_export(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(LLMError, match=f"export {ENV}=\\.\\.\\."):
        OpenAIBackend(LLMConfig(backend="openai", model="gpt-4o-mini", api_key_env=ENV))
    with pytest.raises(LLMError, match="api_key_env is empty"):
        OpenAIBackend(LLMConfig(backend="openai", model="gpt-4o-mini", api_key_env=""))


def test_missing_key_for_a_local_server_sends_a_placeholder(openai_server, backends, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert backends(openai_server).complete(make_request()).startswith("1. ")
    assert openai_server.requests[0]["authorization"] == f"Bearer {PLACEHOLDER_KEY}"


def test_the_key_never_reaches_logs_errors_or_reprs(openai_server, backends, key_env, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="openai")
    echo = f"the key you sent was {KEY}"
    failures = [
        unauthorized(),
        error(403, echo),
        error(404, f"model not found for {KEY}"),
        error(400, echo),
        *[error(status, echo) for status in (429, 500)] * 2,
        *[malformed(kind) for kind in MALFORMED_KINDS],
        disconnect(),
        disconnect(),
        slow(1.0),
        slow(1.0),
    ]
    openai_server.expected_api_key = KEY
    openai_server.script(*failures)
    backend = backends(openai_server, max_retries=1, timeout=0.3)
    messages, calls = [repr(backend)], 0
    while len(openai_server.completion_requests) < len(failures):
        with pytest.raises(LLMError) as caught:
            backend.complete(make_request())
        messages += [str(caught.value), repr(caught.value), "".join(traceback.format_exception(caught.value))]
        calls += 1
    openai_server.expected_api_key = "sk-another"
    with FakeOpenAIServer() as server:
        dead_url = server.base_url
    for target in (openai_server, dead_url):
        with pytest.raises(LLMError) as caught:
            backends(target, max_retries=1).complete(make_request())
        messages += [str(caught.value), "".join(traceback.format_exception(caught.value))]
    assert calls == 12  # 401, 403, 404, 400, 2 x (429 then 500), 4 malformed, disconnects, timeouts
    assert "***" in " ".join(messages)  # the echoed key was redacted, not dropped silently
    assert all(KEY not in m for m in messages)
    assert KEY not in caplog.text and all(KEY not in r.getMessage() for r in caplog.records)
