"""One interface for everything that answers yes/no questions about images, and its config.

An `Answerer` takes pairs (image, question) and returns, per pair, P(yes) and the answer text. Backends:
`transformers` (a local chat VLM, `AutoModelForImageTextToText`), `blip` (a BLIP-style VQA model),
`openai` (any OpenAI-compatible vision chat server), `programmatic` (a registered checker that reads the
question's structure, e.g. the shapes world's). `answerer_factory.make_answerer(AnswererConfig(...))` builds
one; heavy imports happen only there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from PIL.Image import Image

    from .scores import Question

ANSWERER_BACKENDS = ("transformers", "blip", "openai", "programmatic")


@dataclass(frozen=True)
class Answer:
    p_yes: float
    text: str

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_yes <= 1.0:
            raise ValueError(f"P(yes)={self.p_yes!r} is not a probability")


class Answerer(Protocol):
    label: str  # secret-free and stable: part of the answer cache key, e.g. 'openai:gpt-4o-mini'

    def answer(self, images: Sequence[Image], questions: Sequence[Question]) -> list[Answer]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class AnswererConfig:
    backend: str = field(default="transformers", metadata={"help": f"one of {ANSWERER_BACKENDS}"})
    model: str = field(
        default="",
        metadata={
            "help": "hub id or folder (transformers, blip), server model name (openai), checker name (programmatic)"
        },
    )
    base_url: str = field(default="", metadata={"help": "openai: the server's /v1 URL ('' = api.openai.com)"})
    api_key_env: str = field(
        default="OPENAI_API_KEY", metadata={"help": "openai: NAME of the env variable with the key"}
    )  # noqa: E501
    device: str = field(default="auto", metadata={"help": "transformers/blip: auto, cpu, cuda, cuda:1, mps"})
    dtype: str = field(default="auto", metadata={"help": "transformers/blip: auto, float32, float16, bfloat16"})
    batch_size: int = field(default=8, metadata={"help": "pairs per model call"})

    def __post_init__(self) -> None:
        if self.backend not in ANSWERER_BACKENDS:
            raise ValueError(f"answerer backend={self.backend!r} is not one of {ANSWERER_BACKENDS}")
        if self.backend != "programmatic" and not self.model.strip():
            raise ValueError(
                f"answerer backend={self.backend!r} needs a model (a hub id, folder or server model name)"
            )
        if self.backend == "programmatic" and not self.model.strip():
            raise ValueError("the programmatic answerer needs a checker name as its model (a registered checker)")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"answerer batch_size={self.batch_size!r} must be an integer >= 1")
        if self.api_key_env and not self.api_key_env.replace("_", "").isalnum():
            # Don't echo the value: it may be a key pasted into the wrong field.
            raise ValueError(
                "answerer api_key_env does not look like an environment variable name (letters, digits and '_'); "
                "give the variable's NAME (e.g. OPENAI_API_KEY), never the key itself"
            )

    @property
    def label(self) -> str:
        return f"{self.backend}:{self.model}"
