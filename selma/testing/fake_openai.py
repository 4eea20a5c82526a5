"""A real HTTP server on 127.0.0.1 that speaks enough of the OpenAI protocol for tests and benchmarks.

It answers `POST /v1/chat/completions`, `POST /v1/completions` (legacy) and `GET /v1/models` with bodies
shaped exactly like OpenAI's, so the real `openai` client parses them. Failures are scripted per request, with
the behaviours of `selma.testing.fake_openai_behaviours`:

    with FakeOpenAIServer(expected_api_key="sk-test") as server:
        server.script(429, rate_limited(retry_after=0.05), server_error(503), "1. a red cube", malformed())
        ...  # the next five completion requests get those answers, later ones the default reply
        server.requests[0]["body"]["model"], server.requests[0].authorization  # dicts, keys also attributes

A chat request with an image (a content part of type `image_url`) is answered as a vision model would: "Yes" or
"No" by the colour rule of `selma.testing.fake_openai_vision`, with `logprobs` when asked for (two-way P(yes)
0.8 for yes, 0.2 for no). `vision=False` makes a text-only model (HTTP 400 for images), `logprobs=False` a
server that ignores the `logprobs` request; `no_vision()` and `no_logprobs()` script either for one request.

Stdlib only (plus Pillow, imported lazily, to read the images of vision requests); every connection gets its own
thread, so `latency=` and `slow()` never block other requests.
The default reply is `fake_openai_prompts.made_up_prompts`; the answers' bytes are built in `fake_openai_answers`.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .fake_openai_answers import Answer, error_answer
from .fake_openai_behaviours import Behaviour, as_behaviour
from .fake_openai_prompts import made_up_prompts, request_text
from .fake_openai_vision import ImageError, invalid_image_answer, is_vision_request, logprobs_body, no_vision_answer
from .fake_openai_vision import vision_answer as rule_vision_answer

__all__ = ["FakeOpenAIServer", "ReceivedRequest"]

COMPLETION_PATHS = ("/v1/chat/completions", "/v1/completions")


class ReceivedRequest(dict):
    """One request as the server saw it: a dict {"method", "path", "body", "authorization", "headers"} whose
    keys are also attributes (`r["body"]["model"]` or `r.body["model"]`). body: the parsed JSON; authorization:
    the raw header, e.g. "Bearer sk-...", or None; headers: every header, {name: value} as sent."""

    method = property(lambda self: self["method"])
    path = property(lambda self: self["path"])
    body = property(lambda self: self["body"])
    authorization = property(lambda self: self["authorization"])
    headers = property(lambda self: self["headers"])


class FakeOpenAIServer:
    """An OpenAI-compatible server on 127.0.0.1 (random free port) in a daemon thread.

    Args:
        default_reply: `default_reply(body) -> text` answers requests with no scripted behaviour left
            (default: `made_up_prompts`, seeded by `seed`).
        latency: seconds to sleep on every request before answering (concurrent requests sleep in parallel).
        expected_api_key: if set, requests whose bearer token differs get HTTP 401 (`invalid_api_key`).
        models: if set, only these model ids exist: others get HTTP 404 (`model_not_found`); also what
            `GET /v1/models` lists (default: `("fake-model",)`, any model accepted).
        reject_params: body fields the server refuses with HTTP 400 (`Unsupported parameter: 'seed'`),
            like servers or models that do not take `seed` or `max_tokens`.
        seed: seeds the made-up prompts of the default reply.
        vision: False makes a text-only model: requests with an image get OpenAI's HTTP 400 for those.
        logprobs: False makes a server that ignores `logprobs` (the answer's `logprobs` is null).
        vision_reply: `vision_reply(body) -> text` answers vision requests with no scripted text
            (default: the colour rule, `fake_openai_vision.vision_answer`).

    `default_reply`, `vision_reply`, `latency`, `expected_api_key`, `vision` and `logprobs` are read on every
    request and may be changed while it runs. `requests` lists every request received, in order, as
    `ReceivedRequest`s (dicts with keys method, path, body, authorization, headers); `completion_requests` only
    the chat and legacy completion ones. `max_in_flight` is the most requests the server was answering at once
    (a concurrency check for benchmarks).
    """

    def __init__(
        self,
        default_reply: Callable[[dict], str] | None = None,
        *,
        latency: float = 0.0,
        expected_api_key: str | None = None,
        models: Iterable[str] | None = None,
        reject_params: Iterable[str] = (),
        seed: int = 0,
        vision: bool = True,
        logprobs: bool = True,
        vision_reply: Callable[[dict], str] | None = None,
    ) -> None:
        self._rng = random.Random(seed)
        self.default_reply = default_reply or (lambda body: made_up_prompts(body, self._rng))
        self.vision_reply = vision_reply or rule_vision_answer
        self.vision = vision
        self.logprobs = logprobs
        self.latency = latency
        self.expected_api_key = expected_api_key
        self.models = tuple(models) if models is not None else None
        self.reject_params = tuple(reject_params)
        self.requests: list[ReceivedRequest] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._script: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), _make_handler(self))
        # A short poll interval: stop() waits up to one interval, and tests stop a server each.
        serve, poll = self._httpd.serve_forever, {"poll_interval": 0.02}
        self._thread = threading.Thread(target=serve, kwargs=poll, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (the port then refuses connections) and cut short any sleeping request."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not running; call start() or use it as a context manager")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """What to give the client as base_url, e.g. http://127.0.0.1:PORT/v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting ---------------------------------------------------------------------------------------

    def script(self, *behaviours: str | int | Behaviour | None) -> FakeOpenAIServer:
        """Queue behaviours, consumed one per completion request (chat or legacy) in order: reply text
        (str; None = default reply), an HTTP status (int, e.g. 429 or 503), or one of error(), rate_limited(),
        server_error(), unauthorized(), slow(), malformed(), disconnect(), no_vision(), no_logprobs(). Then the
        default reply again."""
        items = [as_behaviour(b) for b in behaviours]
        with self._lock:
            self._script.extend(items)
        return self

    @property
    def completion_requests(self) -> list[ReceivedRequest]:
        """The chat and legacy completion requests received so far."""
        with self._lock:
            return [r for r in self.requests if r["path"] in COMPLETION_PATHS]

    def _next_behaviour(self) -> Behaviour:
        with self._lock:
            return self._script.popleft() if self._script else Behaviour("reply")

    def _record(self, method: str, path: str, body: dict, headers: dict[str, str]) -> None:
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
        record = ReceivedRequest(method=method, path=path, body=body, authorization=authorization, headers=headers)
        with self._lock:
            self.requests.append(record)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    # -- answers -----------------------------------------------------------------------------------------

    def _answer(self, path: str, body: dict, authorization: str | None) -> Answer:
        """Decide the answer to one request (runs in the request's own thread)."""
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            return self._decide(path, body, authorization)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _decide(self, path: str, body: dict, authorization: str | None) -> Answer:
        self._sleep(self.latency)
        if path == "/v1/models":
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models or ["fake-model"]
            ]
            return Answer.json(200, {"object": "list", "data": data})
        if path not in COMPLETION_PATHS:
            return error_answer(404, f"Unknown request URL: POST {path}. Please check the URL.", code="unknown_url")
        key = self.expected_api_key
        if key is not None and authorization != f"Bearer {key}":
            sent = authorization[len("Bearer ") :] if authorization and authorization.startswith("Bearer ") else ""
            # Echoes the whole key it was sent (OpenAI masks the middle): harsher, so tests catch leaks.
            return error_answer(401, f"Incorrect API key provided: {sent}.", code="invalid_api_key")
        model = body.get("model")
        if self.models is not None and model not in self.models:
            msg = f"The model `{model}` does not exist or you do not have access to it."
            return error_answer(404, msg, code="model_not_found")
        for param in self.reject_params:
            if param in body:
                msg = f"Unsupported parameter: '{param}' is not supported with this model."
                return error_answer(400, msg, code="unsupported_parameter", param=param)

        behaviour = self._next_behaviour()
        if behaviour.kind == "disconnect":
            return Answer(0, b"", {}, disconnect=True)
        if behaviour.kind == "error":
            return error_answer(behaviour.status, behaviour.message, retry_after=behaviour.retry_after)
        vision = path == "/v1/chat/completions" and is_vision_request(body)
        if vision and not (self.vision and behaviour.vision):
            return no_vision_answer(body)
        if behaviour.kind == "slow":
            self._sleep(behaviour.seconds)
        if behaviour.kind == "malformed" and behaviour.malformed in ("not_json", "bad_json"):
            ctype = "text/plain" if behaviour.malformed == "not_json" else "application/json"
            return Answer(200, b"<html>upstream said something odd</html>", {"Content-Type": ctype})
        chat = path == "/v1/chat/completions"
        if behaviour.kind == "malformed" and behaviour.malformed == "no_choices":
            return Answer.json(200, {"id": "x", "object": "chat.completion" if chat else "text_completion"})
        text = "" if behaviour.kind == "malformed" else behaviour.text
        try:
            if text is None:
                text = self.vision_reply(body) if vision else self.default_reply(body)
        except ImageError as exc:
            return invalid_image_answer(str(exc))
        logprobs = chat and bool(body.get("logprobs")) and self.logprobs and behaviour.logprobs
        return Answer.json(200, self._completion_body(chat, body, text, logprobs=logprobs))

    def _completion_body(self, chat: bool, body: dict, text: str, *, logprobs: bool = False) -> dict:
        n_in, n_out = len(request_text(body).split()), len(text.split())
        usage = {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}
        common = {"created": int(time.time()), "model": body.get("model", "fake-model"), "usage": usage}
        call = next(self._ids)
        if chat:
            message = {"role": "assistant", "content": text}
            lp = logprobs_body(text, body.get("top_logprobs")) if logprobs else None
            choice = {"index": 0, "message": message, "logprobs": lp, "finish_reason": "stop"}
            return {"id": f"chatcmpl-fake{call}", "object": "chat.completion", "choices": [choice], **common}
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}
        return {"id": f"cmpl-fake{call}", "object": "text_completion", "choices": [choice], **common}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # many clients connect at once in the throughput benchmark

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that timed out hung up before a slow answer: expected, not worth a traceback.
        pass


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the openai client's connection pool expects
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._handle(body={})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"_unparsed": raw.decode("utf-8", "replace")}
            self._handle(body=body if isinstance(body, dict) else {"_body": body})

        def _handle(self, body: dict) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            auth = self.headers.get("Authorization")
            server._record(self.command, path, body, dict(self.headers.items()))
            answer = server._answer(path, body, auth)
            if answer.disconnect:
                self.close_connection = True
                return
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.payload)))
            self.end_headers()
            self.wfile.write(answer.payload)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # tests read server.requests; stderr noise helps no one

    return Handler
