"""A BLIP VQA model (`BlipForQuestionAnswering`, e.g. Salesforce/blip-vqa-base) as the answerer.

BLIP answers by decoding from its [DEC] start token while attending to the question encoded over the image.
P(yes) is read from the decoder's first step, teacher-forced (the start token only, no free generation): the
"yes" token's probability over that of "yes" and "no" together.

The image tower and the question encoder run batched (the encoder's self-attention masks the padding). The
decoder step does not take the batch's padded questions: `BlipForQuestionAnswering.generate` lets it attend to
the padding, and transformers 5 drops BLIP's cross-attention mask anyway (`BlipTextSelfAttention` reads
`encoder_attention_mask`, which `BlipTextAttention` never passes on). So it runs once per question length, on the
unpadded questions only: a row in a batch answers exactly as it would alone, and the step is one token long.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..models.pipelines import ModelLoadError, resolve_device, resolve_dtype
from .answerer import Answer, AnswererConfig
from .vlm_answerer import (
    NO_VARIANTS,
    YES_VARIANTS,
    answer_token_ids,
    check_model_source,
    chunks,
    load_config,
    to_answer,
    yes_probability,
)

if TYPE_CHECKING:
    from PIL.Image import Image

    from .scores import Question

log = logging.getLogger(__name__)

BLIP_EXAMPLES = "a BLIP VQA folder or hub id such as 'Salesforce/blip-vqa-base' or 'Salesforce/blip-vqa-capfilt-large'"


class BlipAnswerer:
    """Answers yes/no questions with `BlipForQuestionAnswering` + `BlipProcessor`, `batch_size` pairs a pass."""

    def __init__(self, config: AnswererConfig):
        from transformers import BlipForQuestionAnswering, BlipProcessor

        self.label = config.label
        self.batch_size = config.batch_size
        source = check_model_source(config.model, BLIP_EXAMPLES)
        _check_is_blip_vqa(load_config(source, config.model), config.model)
        self.device = resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype, self.device)
        try:
            self.processor = BlipProcessor.from_pretrained(source)
            self.model = BlipForQuestionAnswering.from_pretrained(source, dtype=self.dtype)
        except (OSError, ValueError, RuntimeError) as e:
            raise ModelLoadError(f"could not load the BLIP model {config.model!r} ({type(e).__name__}: {e})") from e
        self.model.to(self.device).eval()
        tokenizer = self.processor.tokenizer
        tokenizer.padding_side = "right"  # a question's tokens are then question[:length]
        self.yes_ids = answer_token_ids(tokenizer, YES_VARIANTS, config.model)
        self.no_ids = answer_token_ids(tokenizer, NO_VARIANTS, config.model)
        self.start_id = self.model.config.text_config.bos_token_id  # [DEC], where BLIP's answers begin
        log.info("loaded BLIP answerer %s on %s as %s", config.model, self.device, self.dtype)

    def answer(self, images: Sequence[Image], questions: Sequence[Question]) -> list[Answer]:
        if len(images) != len(questions):
            raise ValueError(f"{len(images)} images but {len(questions)} questions; pass one image per question")
        pairs = list(zip(images, questions, strict=True))
        p_yes = [p for batch in chunks(pairs, self.batch_size) for p in self._p_yes(*zip(*batch, strict=True))]
        return [to_answer(p) for p in p_yes]

    def _p_yes(self, images: Sequence[Image], questions: Sequence[Question]) -> list[float]:
        import torch

        inputs = self.processor(
            images=[image.convert("RGB") for image in images],
            text=[q.text for q in questions],
            padding=True,
            return_tensors="pt",
        )
        pixels = inputs["pixel_values"].to(self.device, self.dtype)
        ids, mask = inputs["input_ids"].to(self.device), inputs["attention_mask"].to(self.device)
        model = self.model
        with torch.inference_mode():
            image_embeds = model.vision_model(pixel_values=pixels).last_hidden_state
            image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device)
            question = model.text_encoder(
                input_ids=ids,
                attention_mask=mask,
                encoder_hidden_states=image_embeds,
                encoder_attention_mask=image_mask,
            ).last_hidden_state
            lengths = mask.sum(dim=1)
            p_yes = torch.empty(len(images))
            for length in lengths.unique().tolist():
                rows = (lengths == length).nonzero().squeeze(1)
                start = torch.full((len(rows), 1), self.start_id, dtype=torch.long, device=self.device)
                logits = model.text_decoder(input_ids=start, encoder_hidden_states=question[rows, :length]).logits
                p_yes[rows.cpu()] = torch.tensor(yes_probability(logits[:, 0], self.yes_ids, self.no_ids))
        return p_yes.tolist()

    def close(self) -> None:
        self.model = None


def _check_is_blip_vqa(config, model: str) -> None:
    architectures = getattr(config, "architectures", None) or []
    if config.model_type != "blip" or (architectures and "BlipForQuestionAnswering" not in architectures):
        kind = architectures[0] if architectures else f"{config.model_type!r} model"
        raise ModelLoadError(
            f"{model!r} is a {kind}, not a BLIP VQA model (BlipForQuestionAnswering); pass {BLIP_EXAMPLES}, "
            "or use backend='transformers' for a chat vision-language model"
        )
