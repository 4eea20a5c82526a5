"""Loading pipelines: device/dtype choice, SD vs SDXL from checkpoint keys, the three sources, and the errors."""

from __future__ import annotations

import re
import socket

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from safetensors.torch import save_file

from selma.models.pipelines import (
    ModelLoadError,
    checkpoint_architecture,
    load_pipeline,
    read_checkpoint_keys,
    resolve_device,
    resolve_dtype,
    source_kind,
)
from selma.testing.tiny_models import build_tiny_sd

# --- an original-layout (LDM, A1111, ComfyUI) single-file checkpoint, from a diffusers pipeline ---
# The inverse of diffusers' own single-file conversion, for the tiny models' block layout; only tests need it.

_RESNET = [
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("time_emb_proj", "emb_layers.1"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("conv_shortcut", "skip_connection"),
]
_UNET_FIXED = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_VAE_ATTENTION = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]


def _resnet(rest: str) -> str:
    for new, old in _RESNET:
        if rest.startswith(new + "."):
            return old + rest[len(new) :]
    raise KeyError(rest)


def _unet_key(key: str, per: int, attention_up: list[bool]) -> str:
    """diffusers UNet key -> LDM key. `per` = layers_per_block; LDM numbers its blocks flat: each down level has
    `per` (resnet, attention) blocks plus a downsampler, each up level `per + 1` blocks, the last one upsampling."""
    head, _, rest = key.partition(".")
    if head in ("time_embedding", "conv_in", "conv_norm_out", "conv_out"):
        name, _, tail = key.rpartition(".")
        new = f"{_UNET_FIXED[name]}.{tail}"
    elif m := re.fullmatch(r"(down|up)_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", key):
        level, layer = int(m[2]), int(m[4])
        block = 1 + level * (per + 1) + layer if m[1] == "down" else level * (per + 1) + layer
        side = "input_blocks" if m[1] == "down" else "output_blocks"
        new = f"{side}.{block}.0.{_resnet(m[5])}" if m[3] == "resnets" else f"{side}.{block}.1.{m[5]}"
    elif m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
        new = f"input_blocks.{(int(m[1]) + 1) * (per + 1)}.0.op.{m[2]}"
    elif m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
        level = int(m[1])
        new = f"output_blocks.{level * (per + 1) + per}.{2 if attention_up[level] else 1}.conv.{m[2]}"
    elif m := re.fullmatch(r"mid_block\.resnets\.(\d+)\.(.*)", key):
        new = f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
    elif m := re.fullmatch(r"mid_block\.attentions\.0\.(.*)", key):
        new = f"middle_block.1.{m[1]}"
    else:
        raise KeyError(key)
    return "model.diffusion_model." + new


def _vae_key(key: str, levels: int) -> str:
    """diffusers VAE key -> LDM key (the decoder's levels are numbered in reverse there)."""
    if m := re.fullmatch(r"(encoder|decoder)\.conv_norm_out\.(.*)", key):
        new = f"{m[1]}.norm_out.{m[2]}"
    elif m := re.fullmatch(r"(encoder\.down|decoder\.up)_blocks\.(\d+)\.(resnets|\w+samplers)\.(\d+)\.(.*)", key):
        level = int(m[2]) if m[1] == "encoder.down" else levels - 1 - int(m[2])
        if m[3] == "resnets":
            new = f"{m[1]}.{level}.block.{m[4]}.{m[5].replace('conv_shortcut', 'nin_shortcut')}"
        else:
            new = f"{m[1]}.{level}.{m[3][:-2]}.{m[5]}"  # downsamplers.0 -> downsample
    elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d+)\.(.*)", key):
        new = f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
    elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.*)", key):
        rest = m[2]
        for ours, theirs in _VAE_ATTENTION:
            rest = theirs + rest[len(ours) :] if rest.startswith(ours + ".") else rest
        new = f"{m[1]}.mid.attn_1.{rest}"
    else:
        new = key  # conv_in, conv_out, quant_conv, post_quant_conv keep their names
    return "first_stage_model." + new


def save_ldm_checkpoint(pipe: StableDiffusionPipeline, path) -> None:
    """Write `pipe` as an original-layout SD1.x checkpoint (.safetensors, or .ckpt with a 'state_dict')."""
    unet, vae = pipe.unet.config, pipe.vae.config
    attention_up = ["CrossAttn" in t for t in unet.up_block_types]
    state = {_unet_key(k, unet.layers_per_block, attention_up): v for k, v in pipe.unet.state_dict().items()}
    for key, value in pipe.vae.state_dict().items():
        new = _vae_key(key, len(vae.up_block_types))
        state[new] = value[:, :, None, None] if ".mid.attn_1." in new and value.ndim == 2 else value  # 1x1 convs
    for key, value in pipe.text_encoder.state_dict().items():  # transformers >= 5.6 dropped the text_model level
        key = key if key.startswith("text_model.") else "text_model." + key
        state["cond_stage_model.transformer." + key] = value
    state = {k: v.contiguous() for k, v in state.items()}
    if str(path).endswith(".safetensors"):
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state}, str(path))


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared CPU OpenMP's spinning threads are 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny SD pipeline and the diffusers folder it was saved to."""
    folder = tmp_path_factory.mktemp("tiny") / "tiny-sd"
    return build_tiny_sd(folder), folder


@pytest.fixture
def offline(monkeypatch):
    """Hub offline, and any socket connection fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def refuse(self, address):
        raise AssertionError(f"network access to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def render(pipe, prompt="two red cats on the left of a tree") -> np.ndarray:
    generator = torch.Generator("cpu").manual_seed(3)
    return pipe(prompt, num_inference_steps=2, generator=generator, output_type="np").images


# --- device and dtype -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"), [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert resolve_device("auto") == expected


def test_auto_dtype_is_half_on_gpus_and_float32_on_cpu():
    assert resolve_dtype("auto", "cuda") == torch.float16
    assert resolve_dtype("auto", "cuda:1") == torch.float16
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16
    assert resolve_dtype("fp32", "cuda") == torch.float32


def test_bad_device_name():
    with pytest.raises(ValueError, match=r"device='gpu' is not a device; use 'auto', 'cpu'"):
        resolve_device("gpu")


def test_bad_dtype_name():
    with pytest.raises(ValueError, match=r"dtype='int8' is not supported; use one of \['auto', 'bfloat16'"):
        resolve_dtype("int8", "cpu")


def test_cuda_requested_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device='cuda:1' but this torch .* sees no CUDA GPU; use device='auto'"):
        resolve_device("cuda:1")


# --- SD1.x/2.x vs SDXL from the keys --------------------------------------------------------------

UNET = "model.diffusion_model.input_blocks.0.0.weight"


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ([UNET, "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight"], "sd"),  # SD1.x
        ([UNET, "cond_stage_model.model.token_embedding.weight"], "sd"),  # SD2.x (OpenCLIP)
        (
            [
                UNET,
                "conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight",
                "conditioner.embedders.1.model.positional_embedding",
            ],
            "sdxl",
        ),
    ],
    ids=["sd1", "sd2", "sdxl"],
)
def test_architecture_from_checkpoint_keys(keys, expected):
    assert checkpoint_architecture(keys) == expected


@pytest.mark.parametrize(
    ("keys", "match"),
    [
        ([UNET, "conditioner.embedders.0.model.text_projection"], "SDXL \\*refiner\\*.*pass an SDXL base"),
        ([UNET, "model.diffusion_model.time_embed.0.weight"], "no text encoder.*diffusers folder"),
        (["double_blocks.0.img_attn.norm.key_norm.scale"], "not a Stable Diffusion .*keys start with double_blocks"),
    ],
    ids=["refiner", "unet-only", "flux"],
)
def test_architecture_rejects_what_it_cannot_render(keys, match):
    with pytest.raises(ValueError, match=match):
        checkpoint_architecture(keys, "model.safetensors")


# --- the three sources ----------------------------------------------------------------------------


def test_diffusers_folder_loads_offline_and_renders_like_the_original(tiny, offline):
    pipe, folder = tiny
    loaded = load_pipeline(folder, device="auto", dtype="auto")
    assert isinstance(loaded, StableDiffusionPipeline)
    assert loaded.device.type == "cpu" and loaded.unet.dtype == torch.float32
    # the same weights through a reloaded module may take another kernel on another CPU: not bit for bit
    np.testing.assert_allclose(render(loaded), render(pipe), rtol=0, atol=1e-5)


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_single_file_checkpoint_with_a_local_config_folder(tiny, offline, tmp_path, suffix):
    pipe, folder = tiny
    checkpoint = tmp_path / f"tiny{suffix}"
    save_ldm_checkpoint(pipe, checkpoint)
    assert source_kind(checkpoint) == "file"
    assert checkpoint_architecture(read_checkpoint_keys(checkpoint)) == "sd"
    loaded = load_pipeline(checkpoint, device="cpu", config_folder=folder)
    assert isinstance(loaded, StableDiffusionPipeline)
    for name in ("unet", "vae", "text_encoder"):
        ours, theirs = getattr(pipe, name).state_dict(), getattr(loaded, name).state_dict()
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours), name
    np.testing.assert_allclose(render(loaded), render(pipe), rtol=0, atol=1e-5)


def test_single_file_without_config_offline_says_to_pass_a_config_folder(tiny, offline, tmp_path):
    checkpoint = tmp_path / "tiny.safetensors"
    save_ldm_checkpoint(tiny[0], checkpoint)
    with pytest.raises(ModelLoadError, match=r"offline, pass config_folder= \(CLI: --config-folder\) a local"):
        load_pipeline(checkpoint, device="cpu")


def test_config_folder_must_be_a_diffusers_folder(tiny, tmp_path):
    checkpoint = tmp_path / "tiny.safetensors"
    save_ldm_checkpoint(tiny[0], checkpoint)
    with pytest.raises(ValueError, match=r"config_folder=.* is not a diffusers folder \(no model_index.json\)"):
        load_pipeline(checkpoint, device="cpu", config_folder=tmp_path)


@pytest.mark.filterwarnings("ignore:The `local_dir_use_symlinks` argument is deprecated:UserWarning")
def test_hub_id_that_cannot_be_fetched(offline):
    assert source_kind("nobody-here/no-such-model") == "hub"
    with pytest.raises(ModelLoadError, match=r"could not load 'nobody-here/no-such-model' from the Hugging Face hub"):
        load_pipeline("nobody-here/no-such-model", device="cpu")


# --- unreadable model paths -----------------------------------------------------------------------


@pytest.mark.parametrize("model", ["/no/such/model", "./missing.safetensors", "runs/r1/models/sd", "~/gone.ckpt"])
def test_missing_path_says_what_to_pass(model):
    with pytest.raises(ValueError, match=r"model path .* does not exist; pass a diffusers folder \(with model_index"):
        load_pipeline(model)


def test_folder_without_model_index_points_at_the_checkpoint_inside(tmp_path):
    (tmp_path / "sd15.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match=r"not a diffusers pipeline \(no model_index.json\); it holds sd15.safe"):
        load_pipeline(tmp_path)


def test_unsupported_file_type(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"model.bin is a .bin file; pass a diffusers folder"):
        load_pipeline(tmp_path / "model.bin")


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_damaged_checkpoint(tmp_path, suffix):
    (tmp_path / f"model{suffix}").write_bytes(b"\x00not a checkpoint at all")
    with pytest.raises(ModelLoadError, match=r"cannot read checkpoint .*damaged or incomplete \(download it again\)"):
        load_pipeline(tmp_path / f"model{suffix}", device="cpu")


def test_diffusers_folder_with_missing_weights(tiny, tmp_path, offline):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny[1], broken)
    for weights in (broken / "unet").glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(ModelLoadError, match=r"could not load the diffusers folder .*broken .*incomplete"):
        load_pipeline(broken, device="cpu")
