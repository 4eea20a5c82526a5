"""The model answerers (chat VLM, BLIP VQA) and the CLIP scorer on tiny random models built offline.

Random weights answer nonsense, so these test the reading of P(yes) and the plumbing: a probability, the same
twice, the same batched as one by one, moving with the image and the question, equal to a hand computation
from the model's own outputs, and load errors that say what to pass instead.
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from selma.evaluation.answerer import AnswererConfig
from selma.evaluation.answerer_factory import make_answerer
from selma.evaluation.clip_scorer import ClipScorer
from selma.evaluation.scores import Question, clip_score, vqascore_question
from selma.evaluation.vlm_answerer import ANSWER_INSTRUCTION, yes_probability
from selma.models.pipelines import ModelLoadError
from selma.testing.tiny_vlms import build_tiny_blip_vqa, build_tiny_chat_vlm, build_tiny_clip

BUILDERS = {"transformers": build_tiny_chat_vlm, "blip": build_tiny_blip_vqa}
QUESTIONS = [
    "Is there a cat?",
    "Is the dog to the left of the red car?",
    "Are there two birds?",
    "Is it a photo?",
    'Does this figure show "three apples on a wooden table next to a glass of water"? Please answer yes or no.',
    "Is the sky blue?",
]


def _images(n: int) -> list[Image.Image]:
    """Plain, bright and noisy pictures of different sizes (the processors resize them)."""
    rng = np.random.default_rng(0)
    images = [Image.new("RGB", (16, 16), "black"), Image.new("RGB", (24, 20), "white")]
    images += [Image.fromarray(rng.integers(0, 256, (18 + i, 22, 3), dtype=np.uint8)) for i in range(n)]
    return images[:n]


def _questions(texts: list[str]) -> list[Question]:
    return [Question(i, "entity", text) for i, text in enumerate(texts)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("tiny-vlms")
    built = {backend: build(root / backend) for backend, build in BUILDERS.items()}
    return {**built, "clip": build_tiny_clip(root / "clip")}


@pytest.fixture(scope="module")
def answerers(folders) -> dict:
    """Each backend at batch 4 and at batch 1, loaded once for the module."""
    made = {}
    for backend in BUILDERS:
        for batch in (4, 1):
            config = AnswererConfig(backend=backend, model=str(folders[backend]), device="cpu", batch_size=batch)
            made[backend, batch] = make_answerer(config)
    return made


@pytest.mark.parametrize("backend", list(BUILDERS))
def test_p_yes_is_a_probability_and_the_same_twice(answerers, folders, backend):
    answerer = answerers[backend, 4]
    images, questions = _images(6), _questions(QUESTIONS)
    first = answerer.answer(images, questions)
    assert len(first) == 6 and answerer.label == f"{backend}:{folders[backend]}"
    for a in first:
        assert 0.0 <= a.p_yes <= 1.0
        assert a.text == ("yes" if a.p_yes > 0.5 else "no")
    assert answerer.answer(images, questions) == first


@pytest.mark.parametrize("backend", list(BUILDERS))
def test_a_batch_answers_as_one_pair_at_a_time(answerers, backend):
    # Questions of different lengths, so rows of a batch are padded (left for the VLM, right for BLIP).
    images, questions = _images(6), _questions(QUESTIONS)
    batched = answerers[backend, 4].answer(images, questions)  # batches of 4 and 2
    alone = [answerers[backend, 1].answer([im], [q])[0] for im, q in zip(images, questions, strict=True)]
    np.testing.assert_allclose([a.p_yes for a in batched], [a.p_yes for a in alone], atol=1e-5, rtol=0)


@pytest.mark.parametrize("backend", list(BUILDERS))
def test_p_yes_moves_with_the_image_and_with_the_question(answerers, backend):
    answerer = answerers[backend, 4]
    images, question = _images(3), _questions(QUESTIONS[:1])[0]
    by_image = [a.p_yes for a in answerer.answer(images, [question] * 3)]
    by_question = [a.p_yes for a in answerer.answer([images[0]] * 3, _questions(QUESTIONS[:3]))]
    for values in (by_image, by_question):
        assert min(abs(a - b) for i, a in enumerate(values) for b in values[i + 1 :]) > 1e-4, values


def test_vlm_asks_through_the_chat_template_and_reads_both_spellings_of_yes(answerers):
    answerer = answerers["transformers", 4]
    text = answerer.prompt(vqascore_question("a red cat"))
    assert (
        text
        == f"<|user|>\n<image>{vqascore_question('a red cat').text}{ANSWER_INSTRUCTION}<|endoftext|>\n<|assistant|>\n"
    )
    tokenizer = answerer.tokenizer
    spellings = {tokenizer.convert_ids_to_tokens(i) for i in answerer.yes_ids}
    assert {"yes", "Ġyes", "Yes", "ĠYes"} <= spellings  # byte-level BPE: "Ġ" is the leading space
    assert {"no", "Ġno"} <= {tokenizer.convert_ids_to_tokens(i) for i in answerer.no_ids}


def test_vlm_p_yes_is_the_two_way_softmax_of_its_own_next_token_distribution(answerers):
    answerer = answerers["transformers", 1]
    image, question = _images(3)[2], _questions(QUESTIONS[1:2])[0]
    inputs = answerer.processor(text=[answerer.prompt(question)], images=[[image]], return_tensors="pt")
    with torch.inference_mode():
        probs = answerer.model(**inputs).logits[0, -1].softmax(-1)  # full sequence, full vocabulary
    p_yes, p_no = probs[answerer.yes_ids].sum().item(), probs[answerer.no_ids].sum().item()
    assert answerer.answer([image], [question])[0].p_yes == pytest.approx(p_yes / (p_yes + p_no), abs=1e-6)


def test_yes_probability_sums_the_variants_of_each_side():
    logits = torch.tensor([[1.0, 2.0, 0.5, -1.0, 3.0], [-50.0, -50.0, 10.0, 0.0, 0.0]])
    e = np.exp(logits.numpy())
    expected = [(r[0] + r[1]) / (r[0] + r[1] + r[2] + r[3]) for r in e]  # yes = ids 0, 1; no = ids 2, 3
    assert yes_probability(logits, [0, 1], [2, 3]) == pytest.approx(expected, abs=1e-7)


def test_blip_p_yes_is_its_first_decoding_step(answerers):
    """Teacher-forced from [DEC] equals the scores of the model's own `generate` at its first step."""
    answerer = answerers["blip", 1]
    for image, question in zip(_images(3), _questions(QUESTIONS[:3]), strict=True):
        inputs = answerer.processor(images=image, text=question.text, return_tensors="pt")
        out = answerer.model.generate(
            **inputs, max_new_tokens=1, do_sample=False, output_scores=True, return_dict_in_generate=True
        )
        expected = yes_probability(out.scores[0], answerer.yes_ids, answerer.no_ids)[0]
        assert answerer.answer([image], [question])[0].p_yes == pytest.approx(expected, abs=1e-6)


@pytest.fixture(scope="module")
def clip_scorer(folders) -> ClipScorer:
    return ClipScorer(str(folders["clip"]), device="cpu", batch_size=2)


def test_clipscore_is_2_5_times_the_clipped_cosine_of_the_models_own_embeddings(clip_scorer):
    images = _images(5)
    prompts = ["a red cat", "two dogs on a bench", "a photo of a blue car", "zebra " * 120, "x"]
    scores = clip_scorer.score(images, prompts)
    model, processor = clip_scorer.model, clip_scorer.processor
    for image, prompt, score in zip(images, prompts, scores, strict=True):
        inputs = processor(text=[prompt], images=[image], truncation=True, max_length=77, return_tensors="pt")
        with torch.inference_mode():
            out = model(**inputs)  # text_embeds / image_embeds come L2-normalised
        cosine = float((out.text_embeds[0] * out.image_embeds[0]).sum())
        assert score == pytest.approx(2.5 * max(cosine, 0.0), abs=1e-5)
        assert score == pytest.approx(clip_score(cosine), abs=1e-5)
    assert all(0.0 <= s <= 2.5 for s in scores)
    assert clip_scorer.score(images, prompts) == scores
    one_by_one = [clip_scorer.score([im], [p])[0] for im, p in zip(images, prompts, strict=True)]
    np.testing.assert_allclose(scores, one_by_one, atol=1e-5, rtol=0)
    assert math.isclose(clip_score(-0.3), 0.0)


def test_mismatched_inputs_are_refused(answerers, clip_scorer):
    with pytest.raises(ValueError, match="2 images but 1 questions"):
        answerers["transformers", 4].answer(_images(2), _questions(QUESTIONS[:1]))
    with pytest.raises(ValueError, match="2 images but 1 prompts"):
        clip_scorer.score(_images(2), ["a cat"])


@pytest.mark.parametrize("backend", ["transformers", "blip"])
def test_a_missing_or_empty_folder_says_what_to_pass(tmp_path, backend):
    with pytest.raises(ModelLoadError, match=r"does not exist; pass a .*hub id"):
        make_answerer(AnswererConfig(backend=backend, model=str(tmp_path / "nope"), device="cpu"))
    with pytest.raises(ModelLoadError, match="not a transformers model folder"):
        make_answerer(AnswererConfig(backend=backend, model=str(tmp_path), device="cpu"))


def test_a_model_that_is_not_a_chat_vlm_says_what_to_pass(tmp_path, folders):
    from selma.testing.tiny_models import build_tiny_causal_lm

    lm = build_tiny_causal_lm(tmp_path / "gpt2")
    with pytest.raises(ModelLoadError, match=r"'gpt2' model, not a vision-language chat model.*SmolVLM"):
        make_answerer(AnswererConfig(backend="transformers", model=str(lm), device="cpu"))
    with pytest.raises(ModelLoadError, match="use backend='blip'"):
        make_answerer(AnswererConfig(backend="transformers", model=str(folders["blip"]), device="cpu"))
    with pytest.raises(ModelLoadError, match=r"not a BLIP VQA model.*Salesforce/blip-vqa-base"):
        make_answerer(AnswererConfig(backend="blip", model=str(folders["transformers"]), device="cpu"))
    with pytest.raises(ModelLoadError, match=r"not a CLIP model.*openai/clip-vit"):
        ClipScorer(str(lm), device="cpu")


def test_a_processor_without_chat_template_names_the_fix(tmp_path, folders):
    folder = shutil.copytree(folders["transformers"], tmp_path / "no-template")
    (folder / "chat_template.jinja").unlink()
    with pytest.raises(ModelLoadError, match=r"no chat template.*processor.chat_template"):
        make_answerer(AnswererConfig(backend="transformers", model=str(folder), device="cpu"))
