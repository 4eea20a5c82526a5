"""An OpenAI-compatible vision chat server (OpenAI, vLLM, Ollama, LM Studio) as the answerer.

Each (image, question) pair is one chat request: a user turn holding the image (a PNG data URL) and the question
plus " Answer with yes or no.", temperature 0, a few tokens, `logprobs=True, top_logprobs=20`. P(yes) is read
from the first output token's top alternatives: the probabilities of the yes spellings ("Yes", " yes", "YES",
...) summed, over those of the yes and the no spellings together (the two-way softmax VQAScore uses). A server
that sends no logprobs, or none that spell yes or no, gets P(yes) from its text: 1.0 for an answer that starts
with yes, 0.0 for no, and 0.0 for anything else (the text kept, one warning per answerer).

Pairs run concurrently, `config.batch_size` at a time, answers in input order. Transient failures (408, 429,
5xx, timeouts, connection errors) are retried with backoff; the rest raise an `LLMError` that says what to do.
The key comes from the environment variable that `config.api_key_env` names and, as in
`selma.llm.openai_backend`, never reaches the label, a log record, a repr or an error message.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import openai

from ..errors import LLMError, MalformedAnswer
from ..llm.openai_plumbing import PLACEHOLDER_KEY, Transient, redact, retry_after_seconds, retry_delay, server_message
from .answerer import Answer, AnswererConfig

if TYPE_CHECKING:
    from PIL.Image import Image

    from .scores import Question

logger = logging.getLogger(__name__)

ANSWER_INSTRUCTION = " Answer with yes or no."
MAX_TOKENS = 4  # "Yes" is one token; a little room for "Yes." or a leading space
TOP_LOGPROBS = 20  # OpenAI's maximum
TIMEOUT = 60.0  # seconds per request
MAX_RETRIES = 4
RETRY_BASE_DELAY = 1.0  # seconds; doubles per attempt, with jitter
VISION_EXAMPLES = (
    "e.g. 'gpt-4o-mini' on OpenAI, 'qwen2.5vl' or 'llava' on Ollama, 'Qwen/Qwen2.5-VL-7B-Instruct' on vLLM"
)
# Words servers use when a text-only model is sent an image (OpenAI: "Invalid content type. image_url is only
# supported by certain models."; vLLM: "... is not a multimodal model"; LM Studio: "Model does not support images").
_VISION_HINTS = ("image", "vision", "multimodal", "multi-modal", "content type", "content part")
# ... and when a vision model cannot read the image it was sent (OpenAI: "You uploaded an unsupported image.").
_BAD_IMAGE_HINTS = ("unsupported image", "invalid image", "image too large", "could not process image", "image_parse")
_ANSWER_RE = re.compile(r"[\W_]*(yes|no)\b", re.IGNORECASE)
_TOKEN_MARKS = " \t\r\n\u2581\u0120"  # whitespace, SentencePiece's "▁" and byte-level BPE's "Ġ"
_OPTIONAL_PARAMS = ("logprobs", "top_logprobs", "temperature")  # dropped if the server refuses them


class OpenAIAnswerer:
    """Answers yes/no questions about images with an OpenAI-compatible vision chat model (`config.model`)."""

    def __init__(self, config: AnswererConfig) -> None:
        self.config = config
        self.label = f"openai:{config.model}"
        self.max_retries = MAX_RETRIES
        self.retry_base_delay = RETRY_BASE_DELAY
        self._client = openai.OpenAI(
            base_url=config.base_url or None,  # None: OPENAI_BASE_URL or the real OpenAI
            api_key=_read_api_key(config, self.label),
            timeout=TIMEOUT,
            max_retries=0,  # retried here: our backoff, our messages
        )
        self.base_url = str(self._client.base_url).rstrip("/")
        # What every request sends besides model and messages; adapted (under the lock) if the server refuses one.
        self._params: dict = {
            "temperature": 0,
            "max_tokens": MAX_TOKENS,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
        }
        self._lock = threading.RLock()  # _warn_once runs under it too
        self._warned: set[str] = set()
        self._rng = random.Random()  # jitter only

    def __repr__(self) -> str:
        return f"OpenAIAnswerer(label={self.label!r}, base_url={self.base_url!r})"

    def answer(self, images: Sequence[Image], questions: Sequence[Question]) -> list[Answer]:
        if len(images) != len(questions):
            raise ValueError(f"{len(images)} images but {len(questions)} questions; pass one image per question")
        pairs = list(zip(images, questions, strict=True))
        if len(pairs) <= 1:
            return [self._answer_one(image, question) for image, question in pairs]
        workers = min(self.config.batch_size, len(pairs))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-answerer") as pool:
            futures = [pool.submit(self._answer_one, image, question) for image, question in pairs]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:  # the first error stops the pairs not yet started
                    future.cancel()
                raise

    def close(self) -> None:
        self._client.close()

    # -- one pair ----------------------------------------------------------------------------------------

    def _answer_one(self, image: Image, question: Question) -> Answer:
        content = [
            {"type": "image_url", "image_url": {"url": image_data_url(image)}},
            {"type": "text", "text": question.text + ANSWER_INSTRUCTION},
        ]
        messages = [{"role": "user", "content": content}]
        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._read(self._create_adapting(messages), question)
            except Transient as exc:
                last = exc
            if attempt == attempts:
                break
            delay = self._retry_delay(attempt, last.retry_after)
            logger.warning(
                "%s: %s; retrying in %.2f s (attempt %d of %d)", self.label, last.reason, delay, attempt + 1, attempts
            )
            time.sleep(delay)
        raise self._gave_up(attempts, last)

    def _create_adapting(self, messages: list[dict]) -> object:
        """One attempt; a parameter the server refuses is dropped (or renamed) and the request sent again at
        once. Each adaptation happens once per answerer, so this loop ends."""
        while True:
            with self._lock:
                params = dict(self._params)
            try:
                return self._create_once(messages, params)
            except openai.BadRequestError as exc:
                if not self._adapt_to(exc, params):
                    raise self._status_error(exc) from None

    def _create_once(self, messages: list[dict], params: dict) -> object:
        try:
            return self._client.chat.completions.create(model=self.config.model, messages=messages, **params)
        except openai.BadRequestError:
            raise  # _create_adapting decides
        except openai.APITimeoutError:
            raise Transient(f"no answer within {TIMEOUT:g} s (timeout)") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc  # e.g. "[Errno 111] Connection refused"
            raise Transient(f"connection failed: {self._redact(cause) or exc.message}", unreachable=True) from None
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from None
        except (openai.APIResponseValidationError, json.JSONDecodeError):
            raise self._malformed("its body is not the JSON an OpenAI server sends") from None

    def _read(self, response: object, question: Question) -> Answer:
        if isinstance(response, str):
            raise self._malformed("it is not JSON (is base_url the server's /v1 address?)")
        choices = getattr(response, "choices", None)
        if not choices:
            raise self._malformed("it has no `choices`")
        message = getattr(choices[0], "message", None)
        text = getattr(message, "content", None) or getattr(message, "refusal", None) or ""
        text = self._redact(text.strip()) if isinstance(text, str) else ""  # the text goes into the answer cache
        p_yes = logprob_p_yes(getattr(choices[0], "logprobs", None))
        if p_yes is not None:
            return Answer(p_yes, text)
        if self._params.get("logprobs"):
            why = "P(yes) is 1 or 0, read from the answer text (logprobs give graded scores)"
            self._warn_once("no-logprobs", "%s: the server sent no yes/no logprobs; %s", self.label, why)
        p_yes = text_p_yes(text)
        if p_yes is None:
            what = "an answer that starts with neither yes nor no counts as no (P(yes)=0)"
            self._warn_once("unclear", "%s: %s, e.g. %r to %r", self.label, what, text[:80], question.text[:80])
            p_yes = 0.0
        return Answer(p_yes, text)

    # -- errors ------------------------------------------------------------------------------------------

    def _status_error(self, exc: openai.APIStatusError) -> Exception:
        """An HTTP error as `Transient` (retry) or an `LLMError` that says what to do."""
        status, detail, model = exc.status_code, self._server_message(exc), self.config.model
        if status in (408, 429) or status >= 500:
            return Transient(f"HTTP {status} ({detail})", retry_after=retry_after_seconds(exc.response.headers))
        where = f"The server at {self.base_url}"
        if status in (401, 403):
            env = self.config.api_key_env
            what = "rejected the API key" if status == 401 else "refused access with this API key"
            if not env:
                fix = "The answerer's api_key_env is empty, so no key was sent: name the variable that holds it"
            elif self._client.api_key == PLACEHOLDER_KEY:
                fix = f"{env} is not set and this server wants a key: run `export {env}=...` and restart"
            else:
                fix = f"Check the key in the environment variable {env} (export {env}=...)"
            return LLMError(f"{where} {what} (HTTP {status}). {fix}; the key must be allowed to use model {model!r}.")
        if status == 404:
            if getattr(exc, "code", None) == "model_not_found" or "model" in detail.lower():
                return LLMError(
                    f"{where} has no model {model!r} ({detail}). Check the answerer's model against "
                    f"{self.base_url}/models (for Ollama: `ollama pull <model>` first)."
                )
            return LLMError(
                f"{where} has no chat/completions endpoint (HTTP 404: {detail}). Check that the answerer's "
                "base_url ends with /v1."
            )
        param, lowered = str(getattr(exc, "param", None) or ""), detail.lower()
        if status in (400, 413, 415, 422) and any(h in lowered for h in _BAD_IMAGE_HINTS):
            return LLMError(
                f"{where} could not read the image sent to model {model!r} (HTTP {status}: {detail}). The answerer "
                "sends each image as an RGB PNG data URL; check the server's limits on image size and format."
            )
        if status in (400, 415, 422) and (any(h in lowered for h in _VISION_HINTS) or "content" in param):
            return LLMError(
                f"{where} refused the image for model {model!r} (HTTP {status}: {detail}): the model has no vision "
                f"(it does not take images). Pick a vision model for the answerer, {VISION_EXAMPLES}."
            )
        return LLMError(
            f"{where} refused the request for model {model!r} (HTTP {status}: {detail}). Check the answerer's "
            "model and base_url (it must be an OpenAI-compatible vision chat model)."
        )

    def _adapt_to(self, exc: openai.BadRequestError, sent: dict) -> bool:
        """Drop a refused optional parameter, or send `max_completion_tokens` for a refused `max_tokens`
        (logged once). True: send the request again (also when another thread adapted already)."""
        param, message = getattr(exc, "param", None), self._server_message(exc)
        refused = getattr(exc, "code", None) in ("unsupported_parameter", "unsupported_value") or re.search(
            r"unsupported|not supported|does not support", message, re.IGNORECASE
        )
        if not refused:
            return False

        def names(p: str) -> bool:
            return param == p or re.search(rf"\b{p}\b", message) is not None

        with self._lock:
            for name in _OPTIONAL_PARAMS:
                if not (names(name) and name in sent):
                    continue
                group = ("logprobs", "top_logprobs") if name.endswith("logprobs") else (name,)
                dropped = [p for p in group if self._params.pop(p, None) is not None]
                if dropped:  # else another thread dropped it already
                    then = "; P(yes) comes from the answer text" if "logprobs" in dropped else ""
                    logger.warning(
                        "%s: the server does not take `%s`; sending requests without it%s",
                        self.label,
                        "`, `".join(dropped),
                        then,
                    )
                return True
            if names("max_tokens") and "max_tokens" in sent:
                if "max_tokens" in self._params:
                    self._params["max_completion_tokens"] = self._params.pop("max_tokens")
                    logger.warning("%s: the model wants `max_completion_tokens` instead of `max_tokens`", self.label)
                return True
        return False

    def _malformed(self, why: str) -> MalformedAnswer:
        return MalformedAnswer(
            f"The server at {self.base_url} sent a malformed answer for model {self.config.model!r}: {why}. Check "
            "that the answerer's base_url points at an OpenAI-compatible /v1 API with chat completions."
        )

    def _gave_up(self, attempts: int, last: Transient) -> LLMError:
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if last.unreachable and not self.config.base_url:
            return LLMError(
                f"Could not reach the OpenAI API at {self.base_url} ({tries}; last error: {last.reason}). Check "
                "this machine's network connection and proxy settings, or set the answerer's base_url."
            )
        if last.unreachable:
            return LLMError(
                f"Could not reach the answerer's server at {self.base_url} ({tries}; last error: {last.reason}). "
                "Check that the server is running and that the answerer's base_url is right "
                "(e.g. http://localhost:11434/v1 for Ollama, http://localhost:8000/v1 for vLLM)."
            )
        return LLMError(
            f"The server at {self.base_url} kept failing for model {self.config.model!r}: gave up after {tries}; "
            f"last error: {last.reason}. Try again later."
        )

    def _server_message(self, exc: openai.APIError) -> str:
        return server_message(exc, self._client.api_key)

    def _redact(self, text: object) -> str:
        return redact(text, self._client.api_key)

    def _warn_once(self, what: str, message: str, *args: object) -> None:
        with self._lock:
            if what in self._warned:
                return
            self._warned.add(what)
        logger.warning(message, *args)

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        return retry_delay(self._rng, self.retry_base_delay, attempt, retry_after)


def image_data_url(image: Image) -> str:
    """The image as an RGB PNG in a base64 data URL."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def logprob_p_yes(logprobs: object) -> float | None:
    """p(yes spellings) / (p(yes) + p(no)) over the first output token's top alternatives (the token itself
    if the server lists none); None if there are no logprobs or neither answer is among them."""
    content = getattr(logprobs, "content", None)
    if not content:
        return None
    first = content[0]
    yes = no = 0.0
    for candidate in getattr(first, "top_logprobs", None) or [first]:
        token, logprob = getattr(candidate, "token", None), getattr(candidate, "logprob", None)
        if not isinstance(token, str) or not isinstance(logprob, (int, float)) or math.isnan(logprob):
            continue
        word = token.strip(_TOKEN_MARKS).lower()
        if word == "yes":
            yes += math.exp(min(logprob, 0.0))
        elif word == "no":
            no += math.exp(min(logprob, 0.0))
    return yes / (yes + no) if yes + no > 0 else None


def text_p_yes(text: str) -> float | None:
    """1.0 for an answer that starts with yes, 0.0 for no (any case, after quotes or markup), else None."""
    match = _ANSWER_RE.match(text)
    return None if match is None else float(match.group(1).lower() == "yes")


def _read_api_key(config: AnswererConfig, label: str) -> str:
    """The key from the environment; a placeholder for local servers, which rarely check it."""
    name = config.api_key_env
    key = os.environ.get(name, "").strip() if name else ""
    if key:
        return key
    if config.base_url:
        what = name or "api_key_env"
        logger.info("%s: %s is not set; sending a placeholder API key to %s", label, what, config.base_url)
        return PLACEHOLDER_KEY
    if not name:
        raise LLMError(
            "The answerer's api_key_env is empty, so there is no API key for the OpenAI API; name the environment "
            "variable that holds it (e.g. OPENAI_API_KEY), or set the answerer's base_url to a local server."
        )
    raise LLMError(
        f"The environment variable {name} is not set, so the openai answerer has no API key for the OpenAI API. "
        f"Run `export {name}=...` before starting (the key is never read from a config file or a node widget), "
        "or set the answerer's base_url to a local OpenAI-compatible server."
    )
