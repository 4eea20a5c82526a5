"""The fake OpenAI server as a vision model: the rule that answers yes/no questions about an image, and the
`logprobs` it sends with an answer.

A chat request is a *vision request* when a message's content is a list with an `image_url` part. Unless
scripted otherwise, its answer is "Yes" or "No", decided from the first image (a base64 data URL, decoded with
Pillow) and the text parts of the message that holds it:

- the text names a colour (the first of the whole words "red", "green", "blue" in it, any case): "Yes" iff the
  image's mean value of that channel is > 127;
- it names none: "Yes" iff the image's mean over all three channels (its brightness) is > 127.

So a pure red (255, 0, 0) image gets "Yes" to "Is the cube red?" and "No" to "Is it green?" or "Is it bright?".
An image that is not a data URL, or does not decode, gets HTTP 400 (`invalid_image`), as OpenAI answers a broken
upload; a server made without vision (`FakeOpenAIServer(vision=False)`, or a scripted `no_vision()`) answers any
vision request with OpenAI's HTTP 400 for text-only models (`NO_VISION_MESSAGE`).

With `logprobs` asked for (chat only), `choices[0].logprobs.content[0]` is the answer's first token, and its
`top_logprobs` (the first `top_logprobs` entries of a fixed table, most likely first) spread the answer over
several spellings of yes and of no plus two other tokens, so that the two-way P(yes) = p(yes spellings) /
(p(yes spellings) + p(no spellings)) is `P_YES_IF_YES` (0.8) for a yes answer and `P_YES_IF_NO` (0.2) for a no
answer. A reader that takes only "Yes", or skips the normalisation, gets another number (0.5 or 0.72). A reply
that starts with neither yes nor no gets a first token that is its first word, with neither among the top 20.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re

from .fake_openai_answers import Answer, error_answer

NO_VISION_MESSAGE = "Invalid content type. image_url is only supported by certain models."
P_YES_IF_YES = 0.8
P_YES_IF_NO = 0.2
COLOURS = ("red", "green", "blue")
_COLOUR_RE = re.compile(r"\b(red|green|blue)\b", re.IGNORECASE)
_DATA_URL_RE = re.compile(r"data:image/[\w.+-]+;base64,(.*)", re.DOTALL)

# p(yes spellings) = 0.72, p(no spellings) = 0.18, other tokens 0.10: two-way P(yes) = 0.72 / 0.90 = 0.8.
_YES_TOP = (("Yes", 0.50), (" yes", 0.12), ("No", 0.12), ("YES", 0.10), (" no", 0.06), ("The", 0.06), ("I", 0.04))
# The mirror image: p(yes spellings) = 0.18, p(no spellings) = 0.72, so two-way P(yes) = 0.2.
_NO_TOP = (("No", 0.50), (" no", 0.12), ("Yes", 0.12), ("NO", 0.10), (" yes", 0.06), ("The", 0.06), ("I", 0.04))


class ImageError(ValueError):
    """The request's image is not a data URL the fake server can decode."""


def image_parts(body: dict) -> list[tuple[int, int, dict]]:
    """(message index, part index, part) for every `image_url` part of a chat request, in order."""
    found = []
    for m, message in enumerate(body.get("messages") or []):
        content = message.get("content") if isinstance(message, dict) else None
        for p, part in enumerate(content if isinstance(content, list) else []):
            if isinstance(part, dict) and part.get("type") == "image_url":
                found.append((m, p, part))
    return found


def is_vision_request(body: dict) -> bool:
    return bool(image_parts(body))


def no_vision_answer(body: dict) -> Answer:
    """OpenAI's answer when a text-only model is sent an image."""
    m, p, _ = image_parts(body)[0]
    return error_answer(400, NO_VISION_MESSAGE, param=f"messages.[{m}].content.[{p}].type")


def invalid_image_answer(why: str) -> Answer:
    return error_answer(400, f"You uploaded an unsupported image: {why}", code="invalid_image")


def vision_answer(body: dict) -> str:
    """The answer ("Yes" or "No") to a vision request, by the rule in the module docstring; ImageError if the image
    does not decode."""
    m, _, part = image_parts(body)[0]
    means = channel_means(_image_url(part))
    content = body["messages"][m]["content"]
    text = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "Yes" if predicted_yes(means, text) else "No"


def predicted_yes(means: tuple[float, float, float], text: str) -> bool:
    """The rule on its own: `means` are the image's mean (R, G, B), `text` the question."""
    match = _COLOUR_RE.search(text)
    if match:
        return means[COLOURS.index(match.group(1).lower())] > 127
    return sum(means) / 3 > 127


def channel_means(url: str) -> tuple[float, float, float]:
    """The mean R, G and B of the image in a base64 data URL."""
    from PIL import Image, ImageStat, UnidentifiedImageError

    match = _DATA_URL_RE.fullmatch(url.strip())
    if not match:
        raise ImageError("the fake server reads only base64 data URLs (data:image/png;base64,...)")
    try:
        raw = base64.b64decode(match.group(1), validate=True)
        with Image.open(io.BytesIO(raw)) as image:
            r, g, b = ImageStat.Stat(image.convert("RGB")).mean
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageError(f"the image does not decode ({type(exc).__name__})") from None
    return (r, g, b)


def logprobs_body(text: str, top_logprobs: object) -> dict:
    """`choices[0].logprobs` of a chat answer `text`: its first token and that token's `top_logprobs`
    alternatives (as many as asked for, at most 20)."""
    words = text.split()
    first = words[0] if words else ""
    word = first.strip(".,!?:;\"'*").lower()
    table = _YES_TOP if word == "yes" else _NO_TOP if word == "no" else ((first, 0.90), ("Hmm", 0.06), ("I", 0.04))
    n = top_logprobs if isinstance(top_logprobs, int) and not isinstance(top_logprobs, bool) else 0
    top = [_token(token, p) for token, p in table[: max(0, min(n, 20))]]
    chosen = _token(*table[0])
    return {"content": [{**chosen, "top_logprobs": top}], "refusal": None}


def _token(token: str, p: float) -> dict:
    return {"token": token, "logprob": math.log(p), "bytes": list(token.encode())}


def _image_url(part: dict) -> str:
    image_url = part.get("image_url")
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str):
        raise ImageError("the image_url part has no url")
    return url
