"""FLUX in a real ComfyUI (marker `comfyui`; set COMFYUI_PATH): a tiny random FLUX.1 folder as ComfyUI's own FLUX
model, and our FLUX experts through stock LoraLoader's code path (comfy.sd.load_lora_for_models), every key
consumed, the output that of diffusers with the same expert."""

from __future__ import annotations

import logging

import pytest
import torch
from PIL import Image

from selma.datasets.files import DatasetWriter
from selma.testing.tiny_dit import build_tiny_flux
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
    writer = DatasetWriter(data)
    for index, rgb in enumerate([(230, 20, 20), (20, 200, 40), (30, 40, 220), (240, 230, 30)]):
        writer.add(Image.new("RGB", (32, 32), rgb), f"a picture in colour {index}", index)
    backend = FlowMatchingBackend(build_tiny_flux(), max_sequence_length=16)
    config = TrainConfig(rank=4, alpha=8, resolution=32, batch_size=2, steps=4, save_every=0, learning_rate=5e-3)
    return train_expert(backend, data, tmp_path_factory.mktemp("out"), config, skill="colours").expert_path


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
            guidance=torch.tensor([1.0]),
            transformer_options={},
        )


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
    base = _comfy_forward(patcher, conditioning, noisy)
    patched.patch_model()
    try:
        ours = _comfy_forward(patched, conditioning, noisy)
    finally:
        patched.unpatch_model()
    pipe = build_tiny_flux()
    pipe.load_lora_weights(str(flux_expert.parent), weight_name=flux_expert.name)
    with torch.no_grad():
        diffusers_backend = FlowMatchingBackend(pipe, max_sequence_length=16)
        expected = diffusers_backend.predict(noisy, torch.tensor([600.0]), conditioning)
    assert (ours - base).abs().max() > 1e-4  # the expert changes ComfyUI's output...
    assert torch.allclose(ours, expected, atol=1e-5)  # ...exactly as it changes diffusers'
