"""The openai backend: any OpenAI-compatible server (OpenAI, vLLM, Ollama, LM Studio) through the `openai`
client, chat or legacy completions.

The client's own retries are off (`max_retries=0`): we retry here, so backoff, Retry-After and the
messages are ours. The API key comes from the environment variable that `LLMConfig.api_key_env` names and
never appears in a log record, an exception message or a repr: server messages are redacted and our
errors are raised `from None`, because some servers echo the key they were sent.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time

import openai

from ..errors import LLMError, MalformedAnswer
from .base import LLMConfig, LLMRequest
from .openai_plumbing import PLACEHOLDER_KEY, Transient, redact, retry_after_seconds, retry_delay, server_message

logger = logging.getLogger(__name__)


class OpenAIBackend:
    """Writes prompts with an OpenAI-compatible server; see `LLMConfig` for the knobs."""

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.label = config.label
        self._client = openai.OpenAI(
            base_url=config.base_url or None,  # None: OPENAI_BASE_URL or the real OpenAI
            api_key=_read_api_key(config),
            timeout=config.timeout,
            max_retries=0,
        )
        self.base_url = str(self._client.base_url).rstrip("/")
        self._send_seed = True
        self._token_param = "max_tokens"
        self._rng = random.Random()  # jitter only; independent of any global seeding

    def __repr__(self) -> str:
        return f"OpenAIBackend(label={self.label!r}, base_url={self.base_url!r}, api={self.config.api!r})"

    def close(self) -> None:
        self._client.close()

    def complete(self, request: LLMRequest) -> str:
        """Ask the server once, retrying transient failures with exponential backoff and jitter."""
        attempts = self.config.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._complete_adapting(request)
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

    # -- one call ----------------------------------------------------------------------------------------

    def _complete_adapting(self, request: LLMRequest) -> str:
        """One attempt; if the server refuses `seed` or `max_tokens`, adapt and ask again at once (each
        adaptation happens once per backend, so this loop ends)."""
        while True:
            try:
                return self._complete_once(request)
            except openai.BadRequestError as exc:
                if not self._adapt_to(exc):
                    raise self._status_error(exc) from None

    def _complete_once(self, request: LLMRequest) -> str:
        cfg = self.config
        params = {"model": cfg.model, "temperature": cfg.temperature, "top_p": cfg.top_p}
        params[self._token_param] = cfg.max_tokens
        if self._send_seed:
            params["seed"] = request.seed
        try:
            if cfg.api == "chat":
                response = self._client.chat.completions.create(messages=list(request.messages), **params)
            else:
                response = self._client.completions.create(prompt=request.prompt, **params)
        except openai.BadRequestError:
            raise  # _complete_adapting decides
        except openai.APITimeoutError:
            raise Transient(f"no answer within {cfg.timeout:g} s (timeout)") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc  # e.g. "[Errno 111] Connection refused"
            raise Transient(f"connection failed: {self._redact(cause) or exc.message}", unreachable=True) from None
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from None
        except (openai.APIResponseValidationError, json.JSONDecodeError):
            raise self._malformed("its body is not the JSON an OpenAI server sends") from None
        return self._text_of(response)

    def _text_of(self, response: object) -> str:
        """The answer's text; a missing or empty one is a malformed answer, not an empty list of prompts."""
        if isinstance(response, str):
            raise self._malformed("it is not JSON (is base_url the server's /v1 address?)")
        choices = getattr(response, "choices", None)
        if not choices:
            raise self._malformed("it has no `choices`")
        choice = choices[0]
        if self.config.api == "chat":
            message = getattr(choice, "message", None)
            text = getattr(message, "content", None)
            refusal = getattr(message, "refusal", None)
        else:
            text, refusal = getattr(choice, "text", None), None
        if not isinstance(text, str) or not text.strip():
            why = f"the model refused: {self._redact(refusal)!r}" if refusal else "the text is empty"
            finish = getattr(choice, "finish_reason", None)
            hint = " Raise LLMConfig.max_tokens: the answer was cut off." if finish == "length" else ""
            raise self._malformed(f"{why} (finish_reason={finish!r})", hint)
        return text

    # -- errors ------------------------------------------------------------------------------------------

    def _status_error(self, exc: openai.APIStatusError) -> Exception:
        """Map an HTTP error to `Transient` (retry) or an `LLMError` that says what to do."""
        status, detail = exc.status_code, self._server_message(exc)
        if status == 408 or status == 429 or status >= 500:
            retry_after = retry_after_seconds(exc.response.headers)
            return Transient(f"HTTP {status} ({detail})", retry_after=retry_after)
        if status in (401, 403):
            env = self.config.api_key_env or "OPENAI_API_KEY"
            what = "rejected the API key" if status == 401 else "refused access with this API key"
            if self._client.api_key == PLACEHOLDER_KEY:
                fix = f"{env} is not set and this server wants a key: run `export {env}=...` and restart"
            else:
                fix = f"Check the key in the environment variable {env} (export {env}=...)"
            return LLMError(
                f"The LLM server at {self.base_url} {what} (HTTP {status}). {fix}; the key must be allowed to "
                f"use model {self.config.model!r}."
            )
        if status == 404:
            looks_like_model = (getattr(exc, "code", None) == "model_not_found") or "model" in detail.lower()
            if looks_like_model:
                return LLMError(
                    f"The LLM server at {self.base_url} has no model {self.config.model!r} ({detail}). Check "
                    f"LLMConfig.model against {self.base_url}/models (for Ollama: `ollama pull <model>` first)."
                )
            endpoint = "chat/completions" if self.config.api == "chat" else "completions"
            return LLMError(
                f"The LLM server at {self.base_url} has no {endpoint} endpoint (HTTP 404: {detail}). Check that "
                f"base_url ends with /v1 and that the server offers LLMConfig.api={self.config.api!r}."
            )
        return LLMError(
            f"The LLM server at {self.base_url} refused the request for model {self.config.model!r} "
            f"(HTTP {status}: {detail}). Check LLMConfig (model, api, max_tokens, temperature)."
        )

    def _adapt_to(self, exc: openai.BadRequestError) -> bool:
        """Drop `seed`, or rename `max_tokens`, when the server says it does not take them (logged once)."""
        param, message = getattr(exc, "param", None), self._server_message(exc)

        def names(p: str) -> bool:
            return param == p or re.search(rf"\b{p}\b", message) is not None

        if self._send_seed and names("seed"):
            self._send_seed = False
            logger.warning("%s: the server does not take `seed`; sending requests without it", self.label)
            return True
        unsupported = "max_completion_tokens" in message or getattr(exc, "code", None) == "unsupported_parameter"
        if self.config.api == "chat" and self._token_param == "max_tokens" and names("max_tokens") and unsupported:
            self._token_param = "max_completion_tokens"  # OpenAI's reasoning models refuse `max_tokens`
            logger.warning("%s: the model wants `max_completion_tokens` instead of `max_tokens`", self.label)
            return True
        return False

    def _malformed(self, why: str, hint: str = "") -> MalformedAnswer:
        return MalformedAnswer(
            f"The LLM server at {self.base_url} sent a malformed answer for model {self.config.model!r}: {why}. "
            "Check that base_url points at an OpenAI-compatible /v1 API and that LLMConfig.api matches what "
            f"the model supports (chat or completions).{hint}"
        )

    def _gave_up(self, attempts: int, last: Transient) -> LLMError:
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if last.unreachable and not self.config.base_url:
            return LLMError(
                f"Could not reach the OpenAI API at {self.base_url} ({tries}; last error: {last.reason}). "
                "Check this machine's network connection and proxy settings, or set LLMConfig.base_url."
            )
        if last.unreachable:
            return LLMError(
                f"Could not reach the LLM server at {self.base_url} ({tries}; last error: {last.reason}). "
                "Check that the server is running and that LLMConfig.base_url is right "
                "(e.g. http://localhost:11434/v1 for Ollama, http://localhost:8000/v1 for vLLM)."
            )
        return LLMError(
            f"The LLM server at {self.base_url} kept failing for model {self.config.model!r}: gave up after "
            f"{tries}; last error: {last.reason}. Try again later, or raise LLMConfig.max_retries / timeout."
        )

    def _server_message(self, exc: openai.APIError) -> str:
        return server_message(exc, self._client.api_key)

    def _redact(self, text: object) -> str:
        return redact(text, self._client.api_key)

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        return retry_delay(self._rng, self.config.retry_base_delay, attempt, retry_after)


def _read_api_key(config: LLMConfig) -> str:
    """The key from the environment; a placeholder for local servers, which rarely check it."""
    name = config.api_key_env
    key = os.environ.get(name, "").strip() if name else ""
    if key:
        return key
    if config.base_url:
        logger.info("%s: %s is not set; using a placeholder API key for %s", config.label, name, config.base_url)
        return PLACEHOLDER_KEY
    if not name:
        raise LLMError(
            "LLMConfig.api_key_env is empty, so there is no API key for the OpenAI API; name the environment "
            "variable that holds it (e.g. OPENAI_API_KEY), or set base_url to a local server that needs none."
        )
    raise LLMError(
        f"The environment variable {name} is not set, so there is no API key for the OpenAI API. Run "
        f"`export {name}=...` before starting ComfyUI (the key is never read from a node widget), or set "
        "LLMConfig.base_url to a local OpenAI-compatible server."
    )
