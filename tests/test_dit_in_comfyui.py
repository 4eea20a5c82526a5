"""FLUX.1 and SD3 in a real ComfyUI (marker `comfyui`; set COMFYUI_PATH): tiny random folders as ComfyUI's own FLUX
and SD3 models, our experts through stock LoraLoader's code path (comfy.sd.load_lora_for_models) with every key
consumed and the output diffusers gives with the same expert, and SELMA Train Expert on ComfyUI's FLUX."""

from __future__ import annotations

import logging

import pytest
import torch
from PIL import Image

from selma.datasets.files import DatasetWriter
from selma.experts.lora_files import load_lora_expert
from selma.testing.tiny_dit import build_tiny_flux, build_tiny_sd3
from selma.training import TrainConfig, train_expert
from selma.training.dit_backend import FlowMatchingBackend


def test_the_comfyui_config_of_a_diffusers_flux_transformer(node_package):
    from comfyui_selma.nodes.glue.diffusers_flux_folder import DiffusersFolderError, comfy_flux_config

    config = dict(build_tiny_flux().transformer.config)
    comfy = comfy_flux_config(config)
    assert (comfy["in_channels"], comfy["hidden_size"], comfy["num_heads"]) == (4, 16, 2)
    assert (comfy["depth"], comfy["depth_single_blocks"], comfy["axes_dim"]) == (1, 2, [2, 2, 4])
    assert comfy["guidance_embed"] is True and comfy["context_in_dim"] == 32 and comfy["vec_in_dim"] == 32
    with pytest.raises(DiffusersFolderError, match="do not add up to attention_head_dim 8"):
        comfy_flux_config({**config, "axes_dims_rope": (2, 2, 2)})


@pytest.fixture(scope="module")
def flux_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("flux") / "tiny-flux"
    build_tiny_flux(folder)
    return folder


@pytest.fixture(scope="module")
def flux_expert(flux_folder, tmp_path_factory):
    """A FLUX expert trained headlessly (diffusers) on the folder's model: the file a user would load."""
    data = tmp_path_factory.mktemp("data") / "colours"
    write_colours(data, 4)
    backend = FlowMatchingBackend(build_tiny_flux(), max_sequence_length=16)
    config = TrainConfig(rank=4, alpha=8, resolution=32, batch_size=2, steps=4, save_every=0, learning_rate=5e-3)
    return train_expert(backend, data, tmp_path_factory.mktemp("out"), config, skill="colours").expert_path


COLOURS = [(230, 20, 20), (20, 200, 40), (30, 40, 220), (240, 230, 30)]


def write_colours(folder, count: int):
    """A dataset of `count` solid-colour 32 px images captioned "a picture in colour <i>"."""
    writer = DatasetWriter(folder)
    for index, rgb in enumerate(COLOURS[:count]):
        writer.add(Image.new("RGB", (32, 32), rgb), f"a picture in colour {index}", index)
    return folder


def _conditioning():
    backend = FlowMatchingBackend(build_tiny_flux(), max_sequence_length=16)
    return backend.encode_prompts(["a picture in colour 2"])


def _comfy_forward(patcher, conditioning, noisy) -> torch.Tensor:
    with torch.no_grad():
        return patcher.model.diffusion_model(
            noisy,
            torch.tensor([0.6]),
            conditioning["encoder_hidden_states"],
            y=conditioning["pooled_projections"],
            guidance=torch.tensor([3.5]),  # FlowMatchingBackend's and ComfyFluxBackend's default
            transformer_options={},
        )


def _patched_forward(patcher, conditioning, noisy) -> torch.Tensor:
    """The output with the patcher's LoRA patches on the (shared) weights: loaded as a sampler loads it."""
    import comfy.model_management

    comfy.model_management.load_models_gpu([patcher], force_full_load=True)
    return _comfy_forward(patcher, conditioning, noisy)


@pytest.mark.comfyui
@pytest.mark.parametrize("family", ["flux", "sd3"])
def test_the_folders_vae_scaling_and_shift_are_the_models_latent_format(comfy, node_package, family, tmp_path):
    """ComfyUI's FLUX/SD3 latent formats set their factors in __init__: the folder's must win there."""
    import json

    from comfyui_selma.nodes.glue.diffusers_flux_folder import load_flux_model
    from comfyui_selma.nodes.glue.diffusers_sd3_folder import load_sd3_model

    (build_tiny_flux if family == "flux" else build_tiny_sd3)(tmp_path / family)
    config_path = tmp_path / family / "vae" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "scaling_factor": 0.5, "shift_factor": 0.25}))
    model = (load_flux_model if family == "flux" else load_sd3_model)(tmp_path / family).model
    latents = torch.randn(1, 4, 8, 8)
    assert torch.allclose(model.process_latent_in(latents), (latents - 0.25) * 0.5)
    assert model.latent_format.latent_channels == 4 and model.latent_format.latent_rgb_factors is None


@pytest.mark.comfyui
def test_comfyuis_flux_built_from_the_folder_gives_the_diffusers_output(comfy, node_package, flux_folder):
    from comfyui_selma.nodes.glue.diffusers_flux_folder import load_flux_model

    patcher = load_flux_model(flux_folder)
    assert type(patcher.model).__name__ == "Flux"
    reference = FlowMatchingBackend(build_tiny_flux(), max_sequence_length=16)
    conditioning, noisy = _conditioning(), torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = reference.predict(noisy, torch.tensor([600.0]), conditioning)
    assert torch.allclose(_comfy_forward(patcher, conditioning, noisy), expected, atol=1e-5)


@pytest.mark.comfyui
def test_stock_loraloader_consumes_every_key_of_a_flux_expert(comfy, node_package, flux_folder, flux_expert, caplog):
    import comfy.sd
    import comfy.utils
    from comfyui_selma.nodes.glue.diffusers_flux_folder import load_flux_model

    patcher = load_flux_model(flux_folder)
    lora = comfy.utils.load_torch_file(str(flux_expert), safe_load=True)
    with caplog.at_level(logging.WARNING):
        patched, _ = comfy.sd.load_lora_for_models(patcher, None, lora, 1.0, 0)  # what LoraLoader runs
    assert not [r.message for r in caplog.records if "lora key not loaded" in r.message]
    assert len(patched.patches) > 0

    conditioning, noisy = _conditioning(), torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    base = _patched_forward(patcher, conditioning, noisy)
    ours = _patched_forward(patched, conditioning, noisy)
    pipe = build_tiny_flux()
    pipe.load_lora_weights(str(flux_expert.parent), weight_name=flux_expert.name)
    with torch.no_grad():
        diffusers_backend = FlowMatchingBackend(pipe, max_sequence_length=16)
        expected = diffusers_backend.predict(noisy, torch.tensor([600.0]), conditioning)
    assert (ours - base).abs().max() > 1e-4  # the expert changes ComfyUI's output...
    assert torch.allclose(ours, expected, atol=1e-5)  # ...exactly as it changes diffusers'


@pytest.mark.comfyui
def test_selma_train_expert_trains_a_flux_model_in_comfyui(comfy, comfy_folders, node_package, flux_folder):
    """The node on ComfyUI's FLUX MODEL, CLIP and VAE: the expert is the file headless training writes (diffusers
    names, the fused qkv split), stock LoraLoader consumes every key, and diffusers gives ComfyUI's output."""
    from comfyui_selma.nodes.glue.diffusers_flux_folder import load_flux_folder
    from comfyui_selma.nodes.training import SelmaTrainExpert
    from diffusers import FluxPipeline

    from selma.datasets.rendering import DatasetResult
    from selma.testing.comfy_lora import lora_keys_loaded

    folder = comfy_folders / "output" / "colours"
    write_colours(folder, 4)
    model, clip, vae = load_flux_folder(flux_folder)
    conditioning, noisy = _conditioning(), torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    base = _patched_forward(model, conditioning, noisy)

    out = SelmaTrainExpert().train(
        model, clip, vae, DatasetResult(folder, "colours", 4, prompts=4), "lora", rank=4, alpha=8.0, steps=4,
        learning_rate=5e-3, batch_size=2, grad_accumulation=1, resolution=32, seed=0, save_every=0,
        gradient_checkpointing=True, run_name="flux-test",
    )  # fmt: skip
    expert, trained_model, curve = out["result"]
    assert curve.ndim == 4 and expert.path.parent == comfy_folders / "loras" / "selma"
    from safetensors import safe_open

    with safe_open(str(expert.path), "pt") as f:
        keys, header = set(f.keys()), f.metadata()
    assert header["selma.family"] == "flux"
    assert "transformer.single_transformer_blocks.1.attn.to_v.lora_B.weight" in keys  # split from linear1...
    assert "transformer.single_transformer_blocks.1.proj_mlp.lora_B.weight" in keys  # ...which holds the MLP too
    assert "transformer.transformer_blocks.0.attn.to_out.0.lora_A.weight" in keys

    patched, skipped = lora_keys_loaded(model, expert.path)
    assert skipped == []
    expected = _patched_forward(patched, conditioning, noisy)
    assert torch.allclose(_patched_forward(trained_model, conditioning, noisy), expected, atol=1e-6)
    assert (expected - base).abs().max() > 1e-4

    pipe = FluxPipeline.from_pretrained(str(flux_folder))
    pipe.load_lora_weights(str(expert.path.parent), weight_name=expert.path.name)
    with torch.no_grad():
        in_diffusers = FlowMatchingBackend(pipe, max_sequence_length=16).predict(
            noisy, torch.tensor([600.0]), conditioning
        )
    assert torch.allclose(in_diffusers, expected, atol=1e-5)
    assert torch.equal(_patched_forward(model, conditioning, noisy), base)  # the input MODEL is untouched


def _sd3_forward(patcher, conditioning, noisy) -> torch.Tensor:
    """ComfyUI's MMDiT output, its LoRA patches loaded as a sampler loads them (t in [0, 1000], as diffusers')."""
    import comfy.model_management

    comfy.model_management.load_models_gpu([patcher], force_full_load=True)
    with torch.no_grad():
        return patcher.model.diffusion_model(
            noisy, torch.tensor([600.0]), context=conditioning["encoder_hidden_states"],
            y=conditioning["pooled_projections"], transformer_options={},
        )  # fmt: skip


@pytest.mark.comfyui
def test_stock_loraloader_consumes_every_key_of_an_sd3_expert(comfy, node_package, tmp_path):
    from comfyui_selma.nodes.glue.diffusers_sd3_folder import load_sd3_model

    from selma.testing.comfy_lora import lora_keys_loaded

    build_tiny_sd3(tmp_path / "sd3")
    data = tmp_path / "data"
    write_colours(data, 2)
    backend = FlowMatchingBackend(build_tiny_sd3(), max_sequence_length=16)
    config = TrainConfig(rank=4, alpha=8, resolution=32, batch_size=2, steps=3, save_every=0, learning_rate=5e-3)
    expert = train_expert(backend, data, tmp_path / "out", config, skill="colours").expert_path

    model = load_sd3_model(tmp_path / "sd3")
    reference = FlowMatchingBackend(build_tiny_sd3(), max_sequence_length=16)
    conditioning = reference.encode_prompts(["a picture in colour 1"])
    noisy = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(4))

    base = _sd3_forward(model, conditioning, noisy)
    with torch.no_grad():
        assert torch.allclose(base, reference.predict(noisy, torch.tensor([600.0]), conditioning), atol=1e-5)
    patched, skipped = lora_keys_loaded(model, expert)
    assert skipped == []
    ours = _sd3_forward(patched, conditioning, noisy)
    pipe = build_tiny_sd3()
    pipe.load_lora_weights(str(expert.parent), weight_name=expert.name)
    with torch.no_grad():
        expected = FlowMatchingBackend(pipe, max_sequence_length=16).predict(
            noisy, torch.tensor([600.0]), conditioning
        )
    assert (ours - base).abs().max() > 1e-4
    assert torch.allclose(ours, expected, atol=1e-5)


@pytest.mark.comfyui
def test_selma_train_expert_trains_an_sd3_model_in_comfyui(comfy, comfy_folders, node_package, tmp_path):
    """The node on ComfyUI's SD3 MODEL and CLIP (CLIP-L + CLIP-G + T5): the expert (fused qkv split into
    diffusers' names) loads in stock LoraLoader with every key consumed and in diffusers, with equal outputs."""
    from comfyui_selma.nodes.glue.diffusers_sd3_folder import load_sd3_folder
    from comfyui_selma.nodes.training import SelmaTrainExpert
    from diffusers import StableDiffusion3Pipeline

    from selma.datasets.rendering import DatasetResult
    from selma.testing.comfy_lora import lora_keys_loaded

    build_tiny_sd3(tmp_path / "sd3")
    folder = comfy_folders / "output" / "sd3-colours"
    write_colours(folder, 3)
    model, clip, vae = load_sd3_folder(tmp_path / "sd3")
    cond, pooled = clip.encode_from_tokens(clip.tokenize("a picture in colour 1"), return_pooled=True)
    assert cond.shape[-1] == 4096 and pooled.shape == (1, 64)  # ComfyUI's SD3 layout: CLIP-L+G padded, then T5

    reference = FlowMatchingBackend(build_tiny_sd3(), max_sequence_length=16)
    conditioning = reference.encode_prompts(["a picture in colour 1"])
    noisy = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(4))

    base = _sd3_forward(model, conditioning, noisy)
    out = SelmaTrainExpert().train(
        model, clip, vae, DatasetResult(folder, "sd3-colours", 3, prompts=3), "lora", rank=4, alpha=8.0, steps=3,
        learning_rate=5e-3, batch_size=2, grad_accumulation=1, resolution=32, seed=0, save_every=0,
        gradient_checkpointing=True, run_name="sd3-test",
    )  # fmt: skip
    expert, trained_model, _ = out["result"]
    assert load_lora_expert(expert.path).metadata["family"] == "sd3"
    patched, skipped = lora_keys_loaded(model, expert.path)
    assert skipped == []
    expected = _sd3_forward(patched, conditioning, noisy)
    assert torch.allclose(_sd3_forward(trained_model, conditioning, noisy), expected, atol=1e-6)
    assert (expected - base).abs().max() > 1e-4

    pipe = StableDiffusion3Pipeline.from_pretrained(str(tmp_path / "sd3"))
    pipe.load_lora_weights(str(expert.path.parent), weight_name=expert.path.name)
    with torch.no_grad():
        in_diffusers = FlowMatchingBackend(pipe, max_sequence_length=16).predict(
            noisy, torch.tensor([600.0]), conditioning
        )
    assert torch.allclose(in_diffusers, expected, atol=1e-5)
    assert torch.equal(_sd3_forward(model, conditioning, noisy), base)  # the input MODEL is untouched
