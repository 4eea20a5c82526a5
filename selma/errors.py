"""Exceptions the core raises on purpose: each message says what went wrong and how to fix it."""


class SelmaError(Exception):
    """Base class for errors that a user can act on."""


class LLMError(SelmaError):
    """An LLM backend could not produce text (server down, bad key, model missing, ...)."""


class MalformedAnswer(LLMError):
    """The LLM server answered, but not with usable text. One such answer costs a call, not the run."""


class StageStopped(SelmaError):
    """A long stage stopped early (cancelled, or out of budget); what it had done is kept on disk."""
