"""Build the answerer an AnswererConfig names; programmatic checkers are registered here by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .answerer import Answer, Answerer, AnswererConfig

if TYPE_CHECKING:
    from PIL.Image import Image

    from .scores import Question


# name -> checker(image, question) -> Answer; the shapes world registers its own.
CHECKERS: dict[str, Callable[[Image, Question], Answer]] = {}


def register_checker(name: str, checker: Callable[[Image, Question], Answer]) -> None:
    CHECKERS[name] = checker


class ProgrammaticAnswerer:
    """Answers by code that reads the question's `spec` (what the prompt asked for) and the pixels."""

    def __init__(self, config: AnswererConfig):
        if config.model not in CHECKERS:
            raise ValueError(f"no programmatic checker {config.model!r}; registered: {sorted(CHECKERS) or 'none'}")
        self.label = config.label
        self._check = CHECKERS[config.model]

    def answer(self, images, questions) -> list[Answer]:
        return [self._check(image, question) for image, question in zip(images, questions, strict=True)]

    def close(self) -> None:
        pass


def make_answerer(config: AnswererConfig) -> Answerer:
    """The answerer a config names; torch/transformers/openai load only for the backend chosen."""
    if config.backend == "programmatic":
        return ProgrammaticAnswerer(config)
    if config.backend == "openai":
        from .openai_answerer import OpenAIAnswerer

        return OpenAIAnswerer(config)
    if config.backend == "blip":
        from .blip_answerer import BlipAnswerer

        return BlipAnswerer(config)
    from .vlm_answerer import VLMAnswerer

    return VLMAnswerer(config)
