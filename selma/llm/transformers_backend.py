"""A local causal LM (a transformers folder) as the prompt writer: no server, no key."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from ..errors import LLMError
from .base import LLMConfig, LLMRequest

log = logging.getLogger(__name__)


class TransformersBackend:
    """Samples answers from `AutoModelForCausalLM`; one generation at a time (the model is shared)."""

    max_concurrency = 1

    def __init__(self, config: LLMConfig) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.config = config
        self.label = config.label
        source = config.model
        local = Path(source).expanduser()
        if local.exists() and not (local / "config.json").is_file():
            raise LLMError(f"{local} is not a transformers model folder (no config.json); point model at one")
        if not local.exists() and (source.startswith((".", "/", "~")) or source.count("/") != 1):
            raise LLMError(f"model folder {source!r} does not exist; give a local causal-LM folder or a hub id")
        self.device = config.device if config.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(local) if local.exists() else source)
            self.model = AutoModelForCausalLM.from_pretrained(str(local) if local.exists() else source, dtype=dtype)
        except (OSError, ValueError) as e:
            raise LLMError(f"could not load the causal LM {source!r}: {e}") from e
        self.model.to(self.device).eval()
        self._lock = threading.Lock()

    def complete(self, request: LLMRequest) -> str:
        import torch

        first = len(request.examples) + 1
        tokenizer = self.tokenizer
        if getattr(tokenizer, "chat_template", None):
            inputs = tokenizer.apply_chat_template(
                list(request.messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            primer = ""
        else:  # plain LM: continue the numbered list ourselves
            primer = f"{first}."
            inputs = tokenizer(f"{request.prompt}\n{primer}", return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        sample = self.config.temperature > 0
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        with self._lock, torch.inference_mode():
            torch.manual_seed(request.seed)
            out = self.model.generate(
                **inputs,
                do_sample=sample,
                temperature=self.config.temperature if sample else None,
                top_p=self.config.top_p if sample else None,
                max_new_tokens=self.config.max_tokens,
                pad_token_id=pad,
            )
        text = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        return primer + text

    def close(self) -> None:
        self.model = None
