"""What every client of an OpenAI-compatible server here needs: which failures to retry, how long to wait, and
a server's error message with the API key cut out. Shared by the prompt backend (openai_backend.py) and the
evaluation's vision answerer (selma/evaluation/openai_answerer.py)."""

from __future__ import annotations

import email.utils
import math
import random
import time

import openai

PLACEHOLDER_KEY = "not-needed"  # local servers (Ollama, vLLM, LM Studio) usually take any key
MAX_RETRY_DELAY = 60.0  # seconds; caps both our backoff and a server's Retry-After


class Transient(Exception):
    """A failure worth retrying: 408, 429, 5xx, a timeout or a connection error."""

    def __init__(self, reason: str, *, retry_after: float | None = None, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.unreachable = unreachable


def retry_delay(rng: random.Random, base: float, attempt: int, retry_after: float | None) -> float:
    """The server's Retry-After if it sent one, else base * 2**(attempt-1) with jitter in [50%, 100%]."""
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_DELAY)
    ceiling = min(base * 2 ** (attempt - 1), MAX_RETRY_DELAY)
    return rng.uniform(ceiling / 2, ceiling)


def redact(text: object, api_key: str | None) -> str:
    """`text` with the API key replaced by ***, so a server echoing it never puts it in a log or an error."""
    text = str(text)
    return text.replace(api_key, "***") if api_key and api_key != PLACEHOLDER_KEY else text


def server_message(exc: openai.APIError, api_key: str | None) -> str:
    """The message an error response carries (OpenAI's {"error": {"message"}} or the raw body), short, redacted."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    message = body.get("message") if isinstance(body, dict) else None
    text = str(message if message else (body if body is not None else exc.message))
    return redact(" ".join(text.split())[:300], api_key)


def retry_after_seconds(headers: object) -> float | None:
    """Seconds from `retry-after-ms` or `Retry-After` (seconds or an HTTP date), as OpenAI and proxies send."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except ValueError:
            try:
                seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
            except (TypeError, ValueError):
                continue
        if math.isfinite(seconds):
            return max(seconds, 0.0)
    return None
