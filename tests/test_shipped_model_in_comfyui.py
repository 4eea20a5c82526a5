"""The shipped shapes model in a real ComfyUI (marker `comfyui`; set COMFYUI_PATH and run with ComfyUI's Python):
SELMA Load Shipped Model gives the diffusers model's outputs exactly, samples real pictures, and SELMA's nodes
train, merge and inject on it — the experts loaded by stock ComfyUI code with every key consumed.

The pure parts (ComfyUI's unet_config derived from the diffusers config) run everywhere."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from selma.experts.lora_files import load_lora_expert
from selma.shapes.model import load_shapes_pipeline, shapes_model_dir, unet_config
from selma.testing.comfy_lora import lora_keys_loaded

PROMPTS = [
    "two red circles", "a blue square to the left of a green triangle", "three yellow squares", "a purple circle",
]  # fmt: skip


def test_the_comfy_unet_config_describes_the_shapes_unet(node_package):
    from comfyui_selma.nodes.glue.diffusers_folder import comfy_unet_config, vae_scale

    shipped = json.loads((shapes_model_dir() / "unet" / "config.json").read_text(encoding="utf-8"))
    assert comfy_unet_config(shipped) == comfy_unet_config(unet_config())  # the shipped folder: the code's config
    config = comfy_unet_config(shipped)
    assert config["model_channels"] == 64 and config["channel_mult"] == [1, 2, 2]
    assert config["num_res_blocks"] == [1, 1, 1] and config["context_dim"] == 128 and config["num_heads"] == 8
    assert config["transformer_depth"] == [0, 1, 1]  # no attention at the 16x16 level
    assert config["transformer_depth_output"] == [0, 0, 1, 1, 1, 1]  # shallow level first (ComfyUI pops the end)
    assert config["transformer_depth_middle"] == 1
    assert vae_scale({"block_out_channels": [16, 32, 64]}) == 4


def test_the_comfy_unet_config_refuses_what_it_cannot_build(node_package):
    from comfyui_selma.nodes.glue.diffusers_folder import DiffusersFolderError, comfy_unet_config

    sdxl_like = {**unet_config(), "addition_embed_type": "text_time"}
    with pytest.raises(DiffusersFolderError, match="no added embeddings"):
        comfy_unet_config(sdxl_like)
    with pytest.raises(DiffusersFolderError, match="SimpleCrossAttnDownBlock2D"):
        comfy_unet_config({**unet_config(), "down_block_types": ["SimpleCrossAttnDownBlock2D"] * 3})
    with pytest.raises(DiffusersFolderError, match="32 groups"):
        comfy_unet_config({**unet_config(), "norm_num_groups": 16})


# ------------------------------------------------------------------------------------------ in a real ComfyUI


@pytest.fixture(scope="module")
def shipped(comfy, comfy_folders, node_package):
    from comfyui_selma.nodes.models import SelmaLoadShippedModel

    return SelmaLoadShippedModel().load("shapes", batch_size=len(PROMPTS))


@pytest.fixture(scope="module")
def pipe():
    return load_shapes_pipeline()


def conditioning(clip, text: str) -> list:
    return [[clip.encode_from_tokens(clip.tokenize(text)), {}]]


def sample(comfy, model, clip, vae, latent, prompts, seed=0) -> torch.Tensor:
    """KSampler's path (20 steps dpmpp_2m karras, CFG 5) for each prompt, decoded: [N, 64, 64, 3] in 0..1."""
    images = []
    for k, text in enumerate(prompts):
        empty = latent["samples"][k : k + 1]
        noise = comfy.sample.prepare_noise(empty, seed + k)
        samples = comfy.sample.sample(
            model, noise, 20, 5.0, "dpmpp_2m", "karras", conditioning(clip, text), conditioning(clip, ""), empty
        )
        images.append(vae.decode(samples))
    return torch.cat(images)


def unet_output(model, context: torch.Tensor) -> torch.Tensor:
    x = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    import comfy.model_management

    comfy.model_management.load_models_gpu([model], force_full_load=True)  # what sampling does: swaps patches in
    with torch.inference_mode():
        return model.model.diffusion_model(x, timesteps=torch.tensor([500.0]), context=context).float()


@pytest.mark.comfyui
def test_the_loader_gives_the_diffusers_models_outputs(shipped, pipe):
    model, clip, vae, latent = shipped
    assert latent["samples"].shape == (len(PROMPTS), 4, 16, 16)
    text = PROMPTS[1]
    ids = pipe.tokenizer(text, padding="max_length", max_length=48, return_tensors="pt").input_ids
    with torch.no_grad():
        reference_context = pipe.text_encoder(ids)[0]
        context = clip.encode_from_tokens(clip.tokenize(text))
        assert torch.allclose(context, reference_context, atol=1e-4)
        x = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
        reference = pipe.unet(x, torch.tensor([500.0]), encoder_hidden_states=reference_context).sample
        assert torch.allclose(unet_output(model, reference_context), reference, atol=1e-4)
        decoded = ((pipe.vae.decode(x).sample + 1) / 2).clamp(0, 1).movedim(1, -1)
        assert torch.allclose(vae.decode(x), decoded, atol=1e-4)
        assert vae.encode(decoded).shape == (1, 4, 16, 16)


@pytest.mark.comfyui
def test_sampling_draws_the_worlds_shapes(comfy, shipped):
    """The base model is strong on one object: the detector finds the one object asked for."""
    from PIL import Image

    from selma.shapes.detect import find_objects

    images = sample(comfy, *shipped, ["a red triangle", "a blue circle"])
    assert images.shape == (2, 64, 64, 3)
    for image, (colour, shape) in zip(images, [("red", "triangle"), ("blue", "circle")], strict=True):
        found = find_objects(Image.fromarray((image.numpy() * 255).round().astype("uint8")))
        assert [(o.colour, o.shape) for o in found] == [(colour, shape)]


@pytest.mark.comfyui
def test_selma_trains_merges_and_injects_on_the_shipped_model(comfy, comfy_folders, shipped):
    from comfyui_selma.nodes.datasets import SelmaDatasetWriter
    from comfyui_selma.nodes.experts import SelmaApplyExpert, SelmaLoadStyleInject
    from comfyui_selma.nodes.merging import SelmaMergeExperts
    from comfyui_selma.nodes.training import SelmaTrainExpert

    model, clip, vae, latent = shipped
    context = clip.encode_from_tokens(clip.tokenize(PROMPTS[0]))
    base = unet_output(model, context)
    images = sample(comfy, *shipped, PROMPTS)  # self-generated data, as SELMA does
    experts = []
    for skill, seed in (("counting", 0), ("spatial", 1)):
        (dataset,) = SelmaDatasetWriter().write([images], PROMPTS, [skill], ["shapes-test"])
        (dataset,) = SelmaDatasetWriter().write([images], PROMPTS, [skill], ["shapes-test"])  # the graph rerun
        assert dataset.count == len(PROMPTS)
        lines = (dataset.folder / "metadata.jsonl").read_text().splitlines()
        assert len(lines) == len(list(dataset.folder.glob("*.png"))) == len(PROMPTS), "one line per image"
        train = dict(rank=4, alpha=4.0, steps=4, learning_rate=1e-2, batch_size=2, grad_accumulation=1)
        out = SelmaTrainExpert().train(
            model, clip, vae, dataset, "lora", **train, resolution=64, seed=seed, save_every=0,
            gradient_checkpointing=False, run_name="shapes-test", aspect_buckets=bool(seed),
        )  # fmt: skip
        expert, trained_model, curve = out["result"]
        assert curve.ndim == 4 and expert.path.is_file()
        assert load_lora_expert(expert.path).metadata["config"]["aspect_buckets"] is bool(
            seed
        )  # the widget reached it
        assert not torch.allclose(unet_output(trained_model, context), base, atol=1e-4)
        patched, skipped = lora_keys_loaded(model, expert.path)
        assert skipped == [] and not torch.allclose(unet_output(patched, context), base, atol=1e-4)
        experts.append(expert)
    assert torch.equal(unet_output(model, context), base)  # the input MODEL is untouched
    foreign = experts[0].path.with_name("foreign.safetensors")  # the catcher sees what ComfyUI skips
    save_file({**load_file(str(experts[0].path)), "lora_unet_no_such_block.lora_up.weight": torch.ones(1, 1)}, foreign)
    assert len(lora_keys_loaded(model, foreign)[1]) == 1

    merged, report = SelmaMergeExperts().merge(
        experts[0], "svd", "", 4, 1.0, 0, "selma/shapes-merged.safetensors", expert_2=experts[1]
    )["result"]
    assert "energy" in report
    patched, skipped = lora_keys_loaded(model, merged.path)
    assert skipped == []
    (applied,) = SelmaApplyExpert().apply(model, merged, 1.0)
    assert torch.allclose(unet_output(applied, context), unet_output(patched, context), atol=1e-5)
    assert not torch.allclose(unet_output(applied, context), base, atol=1e-4)

    (dataset,) = SelmaDatasetWriter().write([images], PROMPTS, ["styles"], ["shapes-test"])
    out = SelmaTrainExpert().train(
        model, clip, vae, dataset, "styleinject", rank=4, alpha=4.0, steps=3, learning_rate=1e-2, batch_size=2,
        grad_accumulation=1, resolution=64, seed=0, save_every=0, gradient_checkpointing=False,
        run_name="shapes-test", num_styles=2,
    )  # fmt: skip
    style = out["result"][0]
    assert style.path.parents[1] == comfy_folders / "styleinject", "StyleInject files are not published among LoRAs"
    import folder_paths

    assert style.path.name not in str(folder_paths.get_filename_list("loras"))
    (injected,) = SelmaLoadStyleInject().load(model, style.path.relative_to(style.path.parents[1]).as_posix(), 1.0)
    assert not torch.allclose(unet_output(injected, context), base, atol=1e-4)
    assert sample(comfy, injected, clip, vae, latent, PROMPTS[:1]).shape == (1, 64, 64, 3)
