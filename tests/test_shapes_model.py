"""The shipped shapes model: it loads by name (diffusers, `load_pipeline("shapes")`, a run config), its files are
what the report says, and its pictures are recognisable scenes of the world (checked by the exact checker)."""

from __future__ import annotations

import json

import pytest
import torch

from selma.models.pipelines import NAMED_MODELS, load_pipeline, source_kind
from selma.shapes.detect import find_objects
from selma.shapes.model import MAX_TOKENS, RESOLUTION, load_shapes_pipeline, training_report, world_words

SINGLE_PROMPTS = ["a red circle", "a blue square", "a green triangle", "a yellow circle", "a purple square",
                  "an orange triangle"]  # fmt: skip


@pytest.fixture(scope="module")
def pipe():
    return load_shapes_pipeline()


def test_the_shipped_model_is_a_small_sd_family_pipeline(pipe):
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    assert isinstance(pipe, StableDiffusionPipeline)
    assert isinstance(pipe.unet, UNet2DConditionModel) and isinstance(pipe.vae, AutoencoderKL)
    assert isinstance(pipe.text_encoder, CLIPTextModel) and isinstance(pipe.tokenizer, CLIPTokenizer)
    assert pipe.unet.dtype == torch.float32  # stored float16, loaded as asked
    folder = NAMED_MODELS["shapes"]
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size <= 30e6, f"{size / 1e6:.1f} MB: the package ships at most 30 MB of model"
    report = training_report()
    assert report["finished"] and report["parameters"]["unet"] == sum(p.numel() for p in pipe.unet.parameters())
    assert report["denoiser_loss_curve"][-1][1] < report["denoiser_loss_curve"][0][1]


def test_every_world_word_is_one_token(pipe):
    for word in world_words():
        assert len(pipe.tokenizer.tokenize(word)) == 1, word
    assert pipe.tokenizer.model_max_length == MAX_TOKENS
    assert len(pipe.tokenizer.tokenize("a zebra")) > 2  # other text still tokenizes, by bytes


def test_loads_by_name_in_the_python_api_and_a_run_config(tmp_path):
    from selma.pipeline.run_config import parse_run_config

    assert source_kind("shapes") == "named"
    loaded = load_pipeline("shapes", device="cpu")
    assert loaded.unet.config.sample_size == RESOLUTION // 4
    config = parse_run_config({"run_dir": "r", "skills": ["shapes_counting"], "images": {"model": "shapes"},
                               "evaluate": {"enabled": True}}, base_dir=tmp_path)  # fmt: skip
    assert config.image_model == config.train_model == "shapes"
    assert config.evaluate.answerer.backend == "programmatic" and config.evaluate.answerer.model == "shapes"
    assert config.evaluate.metrics == ("dsg", "vqascore")


def test_a_missing_install_says_how_to_get_it(monkeypatch, tmp_path):
    from selma.models import pipelines

    monkeypatch.setitem(pipelines.NAMED_MODELS, "shapes", tmp_path / "nothing")
    with pytest.raises(pipelines.ModelLoadError, match="train_shapes_model.py"):
        load_pipeline("shapes", device="cpu")


def test_single_object_prompts_draw_the_named_colour_and_shape(pipe):
    images = pipe(SINGLE_PROMPTS, height=RESOLUTION, width=RESOLUTION, num_inference_steps=20, guidance_scale=5.0,
                  generator=torch.Generator().manual_seed(0)).images  # fmt: skip
    right_colour = right_object = 0
    for prompt, image in zip(SINGLE_PROMPTS, images, strict=True):
        colour, shape = prompt.split()[-2:]
        seen = find_objects(image)
        right_colour += any(o.colour == colour for o in seen)
        right_object += any(o.colour == colour and o.shape == shape for o in seen)
    # measured when shipped: 12/12 of a 12-prompt probe had the right colour and shape
    assert right_colour >= 5, f"{right_colour}/6 pictures show the named colour"
    assert right_object >= 4, f"{right_object}/6 pictures show the named shape in the named colour"


def test_the_report_is_json_beside_the_weights():
    data = json.loads((NAMED_MODELS["shapes"] / "training_report.json").read_text())
    assert data["data"]["object_counts"]["1"] >= 0.5  # mostly one-object captions, on purpose


def test_the_weights_match_their_fingerprint():
    from selma.shapes.model import fingerprint

    folder = NAMED_MODELS["shapes"]
    recorded = json.loads((folder / "fingerprint.json").read_text())
    assert fingerprint(folder) == recorded and len(recorded["files"]) == 3  # unet, vae, text encoder
