"""The fake OpenAI server's answers as bytes: an `_Answer` (status, payload, headers) and OpenAI's error body."""

from __future__ import annotations

import json
from dataclasses import dataclass

_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error"}
_ERROR_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}


@dataclass
class Answer:
    status: int
    payload: bytes
    headers: dict[str, str]
    disconnect: bool = False

    @classmethod
    def json(cls, status: int, body: dict, headers: dict[str, str] | None = None) -> Answer:
        return cls(status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})


def error_answer(
    status: int,
    message: str | None = None,
    *,
    code: str | None = None,
    param: str | None = None,
    retry_after: float | None = None,
) -> Answer:
    default = "Rate limit reached; try again later." if status == 429 else f"The server had an error ({status})."
    error_body = {
        "message": message or default,
        "type": _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error"),
        "param": param,
        "code": code or _ERROR_CODES.get(status),
    }
    headers = {}
    if retry_after is not None:
        headers["retry-after-ms"] = str(int(retry_after * 1000))
        headers["Retry-After"] = str(max(1, int(-(-retry_after // 1))))
    return Answer.json(status, {"error": error_body}, headers)
