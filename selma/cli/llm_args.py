"""The LLM options shared by every command that writes prompts."""

from __future__ import annotations

import argparse

from ..llm import BACKENDS, LLMConfig


def add_llm_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("LLM")
    group.add_argument("--llm", choices=BACKENDS, default="template", help="prompt writer (default: template)")
    group.add_argument("--model", default="", help="model name (openai) or local causal-LM folder (transformers)")
    group.add_argument("--base-url", default="", help="OpenAI-compatible server, e.g. http://localhost:11434/v1")
    group.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="NAME of the environment variable holding the API key"
    )
    group.add_argument("--api", choices=("chat", "completions"), default="chat", help="openai endpoint")
    group.add_argument("--temperature", type=float, default=1.0)
    group.add_argument("--max-tokens", type=int, default=1024)
    group.add_argument("--timeout", type=float, default=60.0, help="seconds per LLM request")
    group.add_argument("--max-retries", type=int, default=5)


def llm_config_from_args(args: argparse.Namespace) -> LLMConfig:
    return LLMConfig(
        backend=args.llm,
        model=args.model,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        api=args.api,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        timeout=args.timeout,
        max_retries=args.max_retries,
    )
