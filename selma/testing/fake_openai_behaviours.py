"""What the fake OpenAI server does for one completion request: `Behaviour`, and the helpers that build one.

    server.script(429, rate_limited(retry_after=0.05), server_error(503), "1. a red cube", malformed())
    server.script(no_vision(), no_logprobs("Yes"))  # one vision request refused, one answered without logprobs

Reply text (str), an HTTP status (int) or one of these, queued with `FakeOpenAIServer.script`
(`selma.testing.fake_openai`), are consumed one per completion request.
"""

from __future__ import annotations

from dataclasses import dataclass

MALFORMED_KINDS = ("not_json", "bad_json", "no_choices", "empty_content")


@dataclass(frozen=True)
class Behaviour:
    """What the server does for one completion request; build it with the helpers below, not by hand."""

    kind: str  # "reply", "error", "slow", "malformed" or "disconnect"
    text: str | None = None  # reply text (None: the default reply)
    status: int = 200
    message: str | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    malformed: str = "not_json"
    vision: bool = True  # False: a vision request gets the HTTP 400 of a text-only model
    logprobs: bool = True  # False: the answer carries no logprobs, even if asked for


def error(status: int, message: str | None = None, *, retry_after: float | None = None) -> Behaviour:
    """Answer with HTTP `status` and an OpenAI-style error body ({"error": {"message", "type", ...}})."""
    if not 400 <= status <= 599:
        raise ValueError(f"error(status={status}): give an HTTP error status in 400..599")
    return Behaviour("error", status=status, message=message, retry_after=retry_after)


def rate_limited(retry_after: float | None = None, message: str | None = None) -> Behaviour:
    """HTTP 429; with `retry_after` (seconds) it sends `retry-after-ms` and a whole-second `Retry-After`."""
    return error(429, message, retry_after=retry_after)


def server_error(status: int = 500, message: str | None = None) -> Behaviour:
    """HTTP 500, 502, 503 or any other 5xx."""
    if not 500 <= status <= 599:
        raise ValueError(f"server_error(status={status}): give a 5xx status, e.g. 500, 502 or 503")
    return error(status, message)


def unauthorized(message: str | None = None) -> Behaviour:
    """HTTP 401 with OpenAI's `invalid_api_key` error body, whatever key was sent."""
    return error(401, message)


def slow(seconds: float, text: str | None = None) -> Behaviour:
    """Sleep `seconds` (other requests are not held up), then answer `text` (or the default reply)."""
    return Behaviour("slow", text=text, seconds=float(seconds))


def malformed(kind: str = "not_json") -> Behaviour:
    """HTTP 200 with a broken answer: `not_json` (text/plain body), `bad_json` (application/json that does
    not parse), `no_choices` (valid JSON without `choices`) or `empty_content` (a choice with empty text)."""
    if kind not in MALFORMED_KINDS:
        raise ValueError(f"malformed(kind={kind!r}) is not known; use one of {', '.join(MALFORMED_KINDS)}")
    return Behaviour("malformed", malformed=kind)


def disconnect() -> Behaviour:
    """Close the connection without answering (the client sees a connection error)."""
    return Behaviour("disconnect")


def no_vision() -> Behaviour:
    """Answer like a text-only model: a vision request (a message with an `image_url` part) gets OpenAI's
    HTTP 400 "Invalid content type. image_url is only supported by certain models."; others the default reply."""
    return Behaviour("reply", vision=False)


def no_logprobs(text: str | None = None) -> Behaviour:
    """Answer `text` (or the default reply) without `logprobs`, even if the request asks for them."""
    return Behaviour("reply", text=text, logprobs=False)


def as_behaviour(item: str | int | Behaviour | None) -> Behaviour:
    """One `script()` item as a Behaviour: reply text (None: the default reply), an HTTP status, or a Behaviour."""
    if isinstance(item, Behaviour):
        return item
    if item is None or isinstance(item, str):
        return Behaviour("reply", text=item)
    if isinstance(item, int) and not isinstance(item, bool):
        return error(item)
    raise TypeError(f"script() got {item!r}; give reply text, an HTTP status (int), or a helper such as error()")
