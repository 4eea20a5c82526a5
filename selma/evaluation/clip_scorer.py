"""CLIPScore (Hessel et al. 2021) with a transformers `CLIPModel`: 2.5 * max(cos(image, prompt), 0).

Image and prompt are embedded by the model's projection heads and compared by cosine; prompts longer than the
text tower's context (77 tokens for OpenAI's CLIP) are truncated, as the paper's reference code does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..models.pipelines import ModelLoadError, resolve_device, resolve_dtype
from .scores import clip_score
from .vlm_answerer import check_model_source, chunks, load_config

if TYPE_CHECKING:
    import torch
    from PIL.Image import Image

log = logging.getLogger(__name__)

CLIP_EXAMPLES = "a CLIP folder or hub id such as 'openai/clip-vit-base-patch32' or 'openai/clip-vit-large-patch14'"


class ClipScorer:
    """Scores (image, prompt) pairs with CLIPScore, `batch_size` pairs a pass."""

    def __init__(self, model: str, device: str = "auto", dtype: str = "auto", batch_size: int = 32):
        from transformers import CLIPModel, CLIPProcessor

        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"ClipScorer batch_size={batch_size!r} must be an integer >= 1")
        source = check_model_source(model, CLIP_EXAMPLES)
        config = load_config(source, model)
        if config.model_type != "clip":
            raise ModelLoadError(
                f"{model!r} is a {config.model_type!r} model, not a CLIP model (CLIPModel); pass {CLIP_EXAMPLES}"
            )
        self.label = f"clip:{model}"
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        try:
            self.processor = CLIPProcessor.from_pretrained(source)
            self.model = CLIPModel.from_pretrained(source, dtype=self.dtype)
        except (OSError, ValueError, RuntimeError) as e:
            raise ModelLoadError(f"could not load the CLIP model {model!r} ({type(e).__name__}: {e})") from e
        self.model.to(self.device).eval()
        positions = self.model.config.text_config.max_position_embeddings
        self.max_length = min(positions, self.processor.tokenizer.model_max_length)
        log.info("loaded CLIP scorer %s on %s as %s", model, self.device, self.dtype)

    def cosines(self, images: Sequence[Image], prompts: Sequence[str]) -> list[float]:
        """cos(image embedding, prompt embedding) per pair."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts; pass one prompt per image")
        pairs = list(zip(images, prompts, strict=True))
        return [c for batch in chunks(pairs, self.batch_size) for c in self._cosines(*zip(*batch, strict=True))]

    def score(self, images: Sequence[Image], prompts: Sequence[str]) -> list[float]:
        """CLIPScore per pair: 2.5 * max(cos, 0), in [0, 2.5]."""
        return [clip_score(c) for c in self.cosines(images, prompts)]

    def _cosines(self, images: Sequence[Image], prompts: Sequence[str]) -> list[float]:
        import torch

        text = self.processor.tokenizer(
            list(prompts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        pixels = self.processor.image_processor([im.convert("RGB") for im in images], return_tensors="pt")
        pixels = pixels["pixel_values"].to(self.device, self.dtype)
        ids, mask = text["input_ids"].to(self.device), text["attention_mask"].to(self.device)
        with torch.inference_mode():
            image_embeds = _pooled(self.model.get_image_features(pixel_values=pixels))
            text_embeds = _pooled(self.model.get_text_features(input_ids=ids, attention_mask=mask))
        cos = torch.nn.functional.cosine_similarity(image_embeds.float(), text_embeds.float(), dim=-1)
        return cos.tolist()

    def close(self) -> None:
        self.model = None


def _pooled(features) -> torch.Tensor:
    """transformers 5 returns a model output whose pooler_output is the projected embedding; 4.x the tensor."""
    return getattr(features, "pooler_output", features)
