"""FLUX.1 / SD3 single files: a transformer-only .safetensors (as flux1-dev.safetensors or a fine-tune is shipped)
assembled with the text encoders, VAE and configs of a diffusers folder; the file's weights are the ones used."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from selma.models.pipelines import dit_family, load_pipeline
from selma.testing.tiny_dit import build_tiny_flux, build_tiny_sd3
from selma.training.diffusers_backend import load_diffusers_backend
from selma.training.dit_backend import FlowMatchingBackend

BUILDERS = {"flux": build_tiny_flux, "sd3": build_tiny_sd3}


def test_the_family_is_read_from_the_keys():
    assert dit_family(["model.diffusion_model.double_blocks.0.img_attn.qkv.weight"]) == "flux"  # BFL / ComfyUI
    assert dit_family(["single_transformer_blocks.0.attn.to_q.weight"]) == "flux"  # diffusers
    assert dit_family(["joint_blocks.0.x_block.attn.qkv.weight"]) == "sd3"
    assert (
        dit_family(["pos_embed.proj.weight", "context_embedder.weight", "transformer_blocks.0.ff.net.2.bias"]) == "sd3"
    )
    assert dit_family(["model.diffusion_model.input_blocks.0.0.weight"]) is None  # an SD UNet


@pytest.mark.parametrize("family", ["flux", "sd3"])
def test_a_transformer_file_is_assembled_with_a_config_folder(family, tmp_path):
    BUILDERS[family](tmp_path / "base", seed=0)
    tuned = BUILDERS[family](seed=1).transformer  # a "fine-tune": other weights, same architecture
    save_file({k: v.contiguous() for k, v in tuned.state_dict().items()}, tmp_path / f"{family}-tuned.safetensors")

    pipe = load_pipeline(tmp_path / f"{family}-tuned.safetensors", device="cpu", config_folder=tmp_path / "base")
    for name, tensor in tuned.state_dict().items():
        assert torch.equal(pipe.transformer.state_dict()[name], tensor), name
    base = BUILDERS[family](seed=0)
    assert torch.equal(next(pipe.vae.parameters()), next(base.vae.parameters()))  # the rest from the folder
    backend = load_diffusers_backend(pipe)
    assert isinstance(backend, FlowMatchingBackend) and backend.family == family


def test_a_transformer_file_without_a_config_folder_says_what_to_pass(tmp_path):
    tuned = build_tiny_flux().transformer
    save_file({k: v.contiguous() for k, v in tuned.state_dict().items()}, tmp_path / "flux1-dev.safetensors")
    with pytest.raises(ValueError, match=r"holds a FLUX.1 transformer only; pass config_folder="):
        load_pipeline(tmp_path / "flux1-dev.safetensors", device="cpu")


def test_selma_train_takes_a_flux_transformer_file_and_its_config_folder(tmp_path):
    from PIL import Image

    from selma.cli import main
    from selma.datasets.files import DatasetWriter
    from selma.experts.lora_files import load_lora_expert

    build_tiny_flux(tmp_path / "base")
    save_file(
        {k: v.contiguous() for k, v in build_tiny_flux(seed=1).transformer.state_dict().items()},
        tmp_path / "t.safetensors",
    )
    writer = DatasetWriter(tmp_path / "run" / "datasets" / "colours")
    for index, rgb in enumerate([(230, 20, 20), (20, 200, 40)]):
        writer.add(Image.new("RGB", (32, 32), rgb), f"a picture in colour {index}", index)
    arguments = ["train", "--run-dir", str(tmp_path / "run"), "--model", str(tmp_path / "t.safetensors")]
    arguments += ["--config-folder", str(tmp_path / "base"), "--skill", "colours", "--rank", "4", "--steps", "2"]
    arguments += ["--batch-size", "2", "--grad-accum", "1", "--resolution", "32"]
    assert main(arguments) == 0
    assert load_lora_expert(tmp_path / "run" / "experts" / "colours.safetensors").metadata["family"] == "flux"
