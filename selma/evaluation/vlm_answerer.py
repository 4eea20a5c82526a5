"""A local chat vision-language model (transformers) as the answerer: P(yes) from one forward pass, no generation.

Each question becomes one user turn of the model's own chat template, the image then the question plus
" Answer yes or no.", with the generation prompt appended, so the next token starts the assistant's reply.
P(yes) is read from that position's logits: the probability of the yes-token variants ("yes", " yes", "Yes",
...) summed, over that of the yes and the no variants together. That is the two-way softmax VQAScore uses.

Pairs go through in batches of `config.batch_size`, left-padded so that the last position is the next token
in every row. The helpers at the bottom (model source check, answer token ids, the two-way softmax) are shared
with the BLIP answerer and the CLIP scorer.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..models.pipelines import ModelLoadError, resolve_device, resolve_dtype
from .answerer import Answer, AnswererConfig

if TYPE_CHECKING:
    import torch
    from PIL.Image import Image

    from .scores import Question

log = logging.getLogger(__name__)

ANSWER_INSTRUCTION = " Answer yes or no."
YES_VARIANTS = ("yes", " yes", "Yes", " Yes", "YES", " YES")
NO_VARIANTS = ("no", " no", "No", " No", "NO", " NO")
VLM_EXAMPLES = "a chat VLM folder or hub id, e.g. 'HuggingFaceTB/SmolVLM-256M-Instruct' or 'llava-hf/llava-1.5-7b-hf'"


class VLMAnswerer:
    """Answers yes/no questions with `AutoModelForImageTextToText` + `AutoProcessor` (hub id or local folder)."""

    def __init__(self, config: AnswererConfig):
        from transformers import AutoProcessor

        self.label = config.label
        self.batch_size = config.batch_size
        source = check_model_source(config.model, VLM_EXAMPLES)
        self.device = resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype, self.device)
        model_class = _vlm_class(source, config.model)
        try:
            self.processor = AutoProcessor.from_pretrained(source)
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"could not load the processor of {config.model!r} ({type(e).__name__}: {e})") from e
        _check_processor(self.processor, config.model)
        self.tokenizer = self.processor.tokenizer
        self.tokenizer.padding_side = "left"  # the last position is the next token in every row
        self.yes_ids = answer_token_ids(self.tokenizer, YES_VARIANTS, config.model)
        self.no_ids = answer_token_ids(self.tokenizer, NO_VARIANTS, config.model)
        if set(self.yes_ids) & set(self.no_ids):
            raise ModelLoadError(f"{config.model!r}: the yes and no answers share a token; its tokenizer is unusable")
        try:
            self.model = model_class.from_pretrained(source, dtype=self.dtype)
        except (OSError, ValueError, RuntimeError) as e:
            raise ModelLoadError(f"could not load the weights of {config.model!r} ({type(e).__name__}: {e})") from e
        self.model.to(self.device).eval()
        # Only the last position's logits are read: skip the LM head elsewhere (a 150k vocabulary times every
        # position of a batch is gigabytes), where the model supports it.
        self._last_only = "logits_to_keep" in inspect.signature(self.model.forward).parameters
        log.info("loaded VLM answerer %s on %s as %s", config.model, self.device, self.dtype)

    def prompt(self, question: Question) -> str:
        """The chat-formatted text for one question, generation prompt included."""
        content = [{"type": "image"}, {"type": "text", "text": question.text + ANSWER_INSTRUCTION}]
        messages = [{"role": "user", "content": content}]
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def answer(self, images: Sequence[Image], questions: Sequence[Question]) -> list[Answer]:
        if len(images) != len(questions):
            raise ValueError(f"{len(images)} images but {len(questions)} questions; pass one image per question")
        pairs = list(zip(images, questions, strict=True))
        p_yes = [p for batch in chunks(pairs, self.batch_size) for p in self._p_yes(*zip(*batch, strict=True))]
        return [to_answer(p) for p in p_yes]

    def _p_yes(self, images: Sequence[Image], questions: Sequence[Question]) -> list[float]:
        import torch

        prompts = [self.prompt(q) for q in questions]
        bos = self.tokenizer.bos_token
        # A template that writes the BOS itself must not get a second one from the tokenizer.
        special = not (bos and prompts[0].startswith(bos))
        inputs = self.processor(
            text=prompts,
            images=[[image.convert("RGB")] for image in images],  # one image per prompt
            padding=True,
            add_special_tokens=special,
            return_tensors="pt",
        )
        inputs = {k: _to(v, self.device, self.dtype) for k, v in inputs.items()}
        if "attention_mask" in inputs and not bool(inputs["attention_mask"][:, -1].all()):
            raise RuntimeError(f"{self.label}: the processor padded on the right; the last position is not the answer")
        extra = {"logits_to_keep": 1} if self._last_only else {}
        with torch.inference_mode():
            logits = self.model(**inputs, **extra).logits[:, -1]
        return yes_probability(logits, self.yes_ids, self.no_ids)

    def close(self) -> None:
        self.model = None
        _free_cache(self.device)


def _vlm_class(source: str, model: str):
    """AutoModelForImageTextToText once the config says the folder is a chat VLM; a clear error otherwise."""
    from transformers import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING, AutoModelForImageTextToText

    config = load_config(source, model)
    if config.model_type == "blip":
        raise ModelLoadError(f"{model!r} is a BLIP model, which has no chat template; use backend='blip' for it")
    if type(config) not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING:
        raise ModelLoadError(
            f"{model!r} is a {config.model_type!r} model, not a vision-language chat model that "
            f"AutoModelForImageTextToText loads; pass {VLM_EXAMPLES} (or backend='blip' for a BLIP VQA model)"
        )
    return AutoModelForImageTextToText


def _check_processor(processor: object, model: str) -> None:
    if getattr(processor, "image_processor", None) is None or getattr(processor, "tokenizer", None) is None:
        raise ModelLoadError(
            f"{model!r} has no image processor + tokenizer pair (AutoProcessor gave a {type(processor).__name__}); "
            "the folder must hold the processor files too: save it with processor.save_pretrained(folder)"
        )
    if not getattr(processor, "chat_template", None):
        raise ModelLoadError(
            f"the processor of {model!r} has no chat template, so a question cannot be put in the model's chat "
            "format; use the instruction-tuned (chat) checkpoint, or set processor.chat_template to the model's "
            "template and save it with processor.save_pretrained(folder)"
        )


# -- shared with blip_answerer and clip_scorer -------------------------------------------------------------------


def check_model_source(model: str, examples: str) -> str:
    """The string to pass to `from_pretrained`: an existing transformers folder (with config.json), or what
    looks like a hub id. A local path that is missing or not a model folder gets an error with the fix."""
    text = str(model).strip()
    path = Path(text).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            what = "a file" if path.is_file() else "a folder without config.json"
            raise ModelLoadError(
                f"model {text!r} is {what}, not a transformers model folder; pass {examples} "
                "(a folder written by save_pretrained holds config.json, the weights and the processor files)"
            )
        return str(path)
    if text.startswith((".", "/", "~", "\\")) or text.count("/") != 1:
        raise ModelLoadError(f"model folder {text!r} does not exist; pass {examples}")
    return text


def load_config(source: str, model: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise ModelLoadError(
            f"could not read the config of {model!r} ({type(e).__name__}: {e}); check the hub id (and "
            "`hf auth login` for gated models), or download the model and pass its local folder"
        ) from e


def answer_token_ids(tokenizer, variants: Sequence[str], model: str) -> list[int]:
    """The ids of the spellings in `variants` that are one whole token each (which ones depends on the
    vocabulary: BPE has "yes" and " yes", SentencePiece "▁yes", uncased BERT only "yes")."""
    ids = []
    for text in variants:
        encoded = tokenizer.encode(text, add_special_tokens=False)
        if len(encoded) == 1 and encoded[0] not in ids:
            ids.append(encoded[0])
    if not ids:
        raise ModelLoadError(
            f"the tokenizer of {model!r} has no single token for any of {list(variants)}, so P(yes) cannot be "
            "read from one next-token distribution; use a model whose vocabulary has whole yes/no tokens"
        )
    return ids


def yes_probability(logits: torch.Tensor, yes_ids: Sequence[int], no_ids: Sequence[int]) -> list[float]:
    """Per row of next-token `logits` (batch, vocab): p(yes variants) / (p(yes variants) + p(no variants)),
    computed as a sigmoid of the log-sum-exp difference (no overflow, no full-vocabulary softmax needed)."""
    import torch

    logits = logits.float()
    yes = torch.logsumexp(logits[:, list(yes_ids)], dim=-1)
    no = torch.logsumexp(logits[:, list(no_ids)], dim=-1)
    return torch.sigmoid(yes - no).tolist()


def to_answer(p_yes: float) -> Answer:
    return Answer(float(p_yes), "yes" if p_yes > 0.5 else "no")


def chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _to(value, device: str, dtype):
    """Tensors onto the model's device; floating ones (pixel values) also in the model's dtype."""
    if not hasattr(value, "to"):
        return value
    return value.to(device, dtype) if value.is_floating_point() else value.to(device)


def _free_cache(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
