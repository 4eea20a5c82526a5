"""The one interface every prompt-writing backend implements, and its config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

BACKENDS = ("template", "openai", "transformers")
APIS = ("chat", "completions")


@dataclass(frozen=True)
class LLMConfig:
    """Which LLM writes the prompts. The API key is never stored here: only the *name* of the
    environment variable that holds it (ComfyUI saves widget values into every PNG and workflow)."""

    backend: str = field(default="template", metadata={"help": f"one of {BACKENDS}"})
    model: str = field(default="", metadata={"help": "model name (openai) or local folder (transformers)"})
    base_url: str = field(default="", metadata={"help": "OpenAI-compatible server, e.g. http://localhost:11434/v1"})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={"help": "name of the env variable with the key"})
    api: str = field(default="chat", metadata={"help": "chat (chat/completions) or completions (legacy)"})
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 1024
    timeout: float = 60.0
    max_retries: int = 5
    retry_base_delay: float = 1.0
    device: str = field(default="auto", metadata={"help": "transformers backend: cpu, cuda, auto"})

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"LLMConfig.backend={self.backend!r} is not known; use one of {', '.join(BACKENDS)}")
        if self.api not in APIS:
            raise ValueError(f"LLMConfig.api={self.api!r} is not known; use 'chat' or 'completions'")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"LLMConfig.temperature={self.temperature} is outside [0, 2]")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"LLMConfig.top_p={self.top_p} is outside (0, 1]")
        if self.max_tokens < 16:
            raise ValueError(f"LLMConfig.max_tokens={self.max_tokens} is too small to hold 20 prompts; use >= 16")
        if self.timeout <= 0:
            raise ValueError(f"LLMConfig.timeout={self.timeout} must be > 0 seconds")
        if self.max_retries < 0:
            raise ValueError(f"LLMConfig.max_retries={self.max_retries} must be >= 0")
        if self.backend == "openai" and not self.model:
            raise ValueError("LLMConfig.model is empty; the openai backend needs a model name, e.g. 'gpt-4o-mini'")
        if self.backend == "transformers" and not self.model:
            raise ValueError("LLMConfig.model is empty; the transformers backend needs a local model folder")
        if self.api_key_env and not self.api_key_env.replace("_", "").isalnum():
            # Don't echo the value: it may be a key pasted into the wrong field.
            raise ValueError(
                "LLMConfig.api_key_env does not look like an environment variable name (letters, digits and '_'); "
                "give the variable's NAME (e.g. OPENAI_API_KEY), never the key itself"
            )

    @property
    def label(self) -> str:
        """A short, secret-free description for logs and records, e.g. 'openai:gpt-4o-mini'."""
        return self.backend if self.backend == "template" else f"{self.backend}:{self.model}"


class SkillSpec(Protocol):
    """What a backend reads of a skill (`selma.prompts.Skill` is one); the LLM layer sits below the
    prompt stage, so it names the fields it needs instead of importing the class."""

    name: str
    description: str
    examples: tuple[str, ...]
    rules: tuple[str, ...]
    word_limit: int
    grammar: str


@dataclass(frozen=True)
class LLMRequest:
    """One call: the rendered meta-prompt (as chat messages and as one completion prompt) plus the
    structured parts it was made from, so an offline backend can answer without reading prose."""

    messages: tuple[dict, ...]
    prompt: str
    skill: SkillSpec
    examples: tuple[str, ...]
    num_prompts: int
    seed: int
    call_id: int
    task: str = "prompts"  # or "questions": DSG questions about one prompt (selma.evaluation.questions)


class LLMBackend(Protocol):
    """Turns a request into raw text: a numbered list of new prompts (parsed by the caller)."""

    label: str

    def complete(self, request: LLMRequest) -> str: ...

    def close(self) -> None: ...
