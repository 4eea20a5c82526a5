"""The answerer flags that `selma eval` and `selma images --filter-threshold` share."""

from __future__ import annotations

import argparse


def add_answerer_arguments(parser, help_text: str) -> None:
    """--answerer BACKEND=MODEL, --answerer-url, --answerer-key-env (on a parser or an argument group)."""
    parser.add_argument("--answerer", metavar="BACKEND=MODEL", help=help_text)
    parser.add_argument("--answerer-url", default="", help="openai answerer: the server's /v1 URL")
    parser.add_argument("--answerer-key-env", default="OPENAI_API_KEY", help="NAME of the env variable with the key")


def answerer_from_args(args: argparse.Namespace, **extra):
    """The AnswererConfig --answerer names (None without it), on --device; `extra` sets more fields."""
    from ..evaluation.answerer import AnswererConfig

    if not args.answerer:
        return None
    backend, sep, model = args.answerer.partition("=")
    if not sep:
        raise ValueError(
            f"--answerer {args.answerer!r} must be BACKEND=MODEL, e.g. transformers=path/to/vlm or programmatic=shapes"
        )
    return AnswererConfig(backend=backend, model=model, base_url=args.answerer_url,
                          api_key_env=args.answerer_key_env, device=args.device, **extra)  # fmt: skip
