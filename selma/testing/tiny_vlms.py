"""Tiny vision-language models for the evaluation answerers, built offline from configs with random weights.

Each builder saves a real transformers model and its processor into a folder, so the answerers load it with
``from_pretrained(folder)`` exactly as they load a downloaded checkpoint:

- `build_tiny_chat_vlm`: a LLaVA (`LlavaForConditionalGeneration`: a CLIP vision tower, a projector and a
  Llama text model) with a `LlavaProcessor` that has a chat template and an ``<image>`` token;
- `build_tiny_blip_vqa`: a `BlipForQuestionAnswering` with a `BlipProcessor` (a BERT word-piece tokenizer);
- `build_tiny_clip`: a `CLIPModel` with a `CLIPProcessor` (the tiny CLIP tokenizer of `tiny_models`).

Every vocabulary has whole "yes" and "no" tokens, so P(yes) is read from real tokens. Weights depend only on
``seed``; the caller's global RNG state is left as it was. Nothing here touches a model hub.
"""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

import transformers
from transformers import (
    BertTokenizerFast,
    BlipConfig,
    BlipForQuestionAnswering,
    BlipProcessor,
    CLIPConfig,
    CLIPModel,
    CLIPProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

from .tiny_models import _seeded, _word_list, build_tiny_clip_tokenizer, byte_level_tokenizer

__all__ = ["TINY_IMAGE_SIZE", "build_tiny_blip_vqa", "build_tiny_chat_vlm", "build_tiny_clip"]

TINY_IMAGE_SIZE = 16  # pixels; patch 4 -> 16 patches, so the VLM sees 16 image tokens
_PATCH = 4
# Wider than the usual 0.02, so random answers move visibly with the image and the question (P(yes) changes by
# hundredths between inputs rather than by thousandths).
_INIT_RANGE = 0.1
# Words the answerers' prompts use, on top of the shared prompt vocabulary.
_QUESTION_WORDS = ["yes", "Yes", "No", "Answer", "Is", "Are", "Does", "Do", "there", "figure", "show", "Please"]
# Transformers 5 names the PIL image processors `...Pil` (the plain name needs torchvision); 4.x has only those.
_CLIPImageProcessor = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
_BlipImageProcessor = getattr(transformers, "BlipImageProcessorPil", None) or transformers.BlipImageProcessor

# One user turn holds a list of parts ({"type": "image"} / {"type": "text", "text": ...}), as real VLM
# templates take them; a plain string content is accepted too.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|endoftext|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _words() -> list[str]:
    return list(dict.fromkeys(_word_list() + _QUESTION_WORDS))


# One vision tower size for all three models (CLIP's and BLIP's vision configs share these fields).
_VISION = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "image_size": TINY_IMAGE_SIZE,
    "patch_size": _PATCH,
}


def _clip_image_processor() -> transformers.ImageProcessingMixin:
    size = TINY_IMAGE_SIZE
    return _CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def _chat_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE over the word list plus the chat and ``<image>`` special tokens, padding on the left."""
    tokenizer = byte_level_tokenizer(_words(), ["<|user|>", "<|assistant|>", "<image>"], 512)
    tokenizer.padding_side = "left"
    return tokenizer


def build_tiny_chat_vlm(path: str | Path, *, seed: int = 0) -> Path:
    """Save a tiny LLaVA (CLIP vision tower 32 wide, Llama 2 layers x 32) and its chat processor into ``path``.

    Loads offline with ``AutoModelForImageTextToText.from_pretrained(path)`` and
    ``AutoProcessor.from_pretrained(path)``; ``processor.apply_chat_template`` works and expands each image
    into 16 ``<image>`` tokens. Its answers are random, which is all an answerer test needs.
    """
    path = Path(path)
    tokenizer = _chat_tokenizer()
    processor = LlavaProcessor(
        image_processor=_clip_image_processor(),
        tokenizer=tokenizer,
        patch_size=_PATCH,
        vision_feature_select_strategy="default",  # drop the CLS token: 16 image tokens, not 17
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
        image_token="<image>",
    )
    text_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=_INIT_RANGE,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(**_VISION, initializer_range=_INIT_RANGE),
        text_config=text_config,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=(TINY_IMAGE_SIZE // _PATCH) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    with _seeded(seed, 0):
        model = LlavaForConditionalGeneration(config).eval()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def _bert_tokenizer() -> BertTokenizerFast:
    """An uncased BERT word-piece tokenizer: special tokens, [DEC] (BLIP's decoder start), characters and their
    ## continuations (so any word tokenizes), then whole words."""
    characters = string.ascii_lowercase + string.digits
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *characters, *string.punctuation]
    vocab += ["##" + c for c in characters] + [w.lower() for w in _words()]
    with tempfile.TemporaryDirectory(prefix="selma-tiny-bert-") as tmp:
        # A file, not a dict: transformers 4 reads vocab_file, 5 converts the file the same way.
        (Path(tmp) / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
        return BertTokenizerFast.from_pretrained(tmp, bos_token="[DEC]", model_max_length=64)


def build_tiny_blip_vqa(path: str | Path, *, seed: int = 0) -> Path:
    """Save a tiny `BlipForQuestionAnswering` (vision, question encoder and answer decoder, each 2 layers x 32)
    and its `BlipProcessor` into ``path``; the decoder starts from [DEC], as Salesforce/blip-vqa-base does."""
    path = Path(path)
    tokenizer = _bert_tokenizer()
    processor = BlipProcessor(
        image_processor=_BlipImageProcessor(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}),
        tokenizer=tokenizer,
    )
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "encoder_hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": tokenizer.model_max_length,
        "bos_token_id": tokenizer.bos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "eos_token_id": tokenizer.sep_token_id,
        "initializer_range": _INIT_RANGE,
    }
    vision_config = {**_VISION, "initializer_range": _INIT_RANGE}
    config = BlipConfig(
        text_config=text_config,
        vision_config=vision_config,
        projection_dim=32,
        image_text_hidden_size=32,
        initializer_range=_INIT_RANGE,
    )
    with _seeded(seed, 1):
        model = BlipForQuestionAnswering(config).eval()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_clip(path: str | Path, *, seed: int = 0) -> Path:
    """Save a tiny `CLIPModel` (text and vision towers 2 layers x 32, projection 16) and its `CLIPProcessor`
    (the tiny CLIP BPE tokenizer, 77 tokens at most) into ``path``."""
    path = Path(path)
    tokenizer = build_tiny_clip_tokenizer()
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": tokenizer.model_max_length,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = CLIPConfig(text_config=text_config, vision_config=_VISION, projection_dim=16)
    processor = CLIPProcessor(image_processor=_clip_image_processor(), tokenizer=tokenizer)
    with _seeded(seed, 2):
        model = CLIPModel(config).eval()
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
