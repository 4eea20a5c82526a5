"""Prompt-writing LLM backends behind one interface: `make_backend(LLMConfig(...))`."""

from __future__ import annotations

from .base import BACKENDS, LLMBackend, LLMConfig, LLMRequest

__all__ = ["BACKENDS", "LLMBackend", "LLMConfig", "LLMRequest", "make_backend"]


def make_backend(config: LLMConfig) -> LLMBackend:
    """Build the backend a config names; heavy imports happen only here."""
    if config.backend == "openai":
        from .openai_backend import OpenAIBackend

        return OpenAIBackend(config)
    if config.backend == "transformers":
        from .transformers_backend import TransformersBackend

        return TransformersBackend(config)
    from .template_backend import TemplateBackend

    return TemplateBackend(config)
