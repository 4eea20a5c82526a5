"""StyleInject expert files and experts on a diffusers UNet: exact round trips, the header, exact targeting,
strength, fit checks, and the LoRA loaders' pointers to the right loader, on the tiny SD UNet."""

from __future__ import annotations

import copy
import functools
import json

import pytest
import torch
from peft import LoraConfig
from safetensors import safe_open
from safetensors.torch import save_file

from selma.experts.lora_files import load_lora_expert
from selma.experts.ref import ExpertRef
from selma.experts.style_inject_files import (
    FORMAT,
    StyleInjectExpert,
    apply_style_inject_expert,
    check_style_inject_fits,
    load_style_inject_expert,
)
from selma.experts.style_inject_from_model import style_inject_expert_from_model
from selma.experts.style_inject_save import save_style_inject_expert
from selma.testing.tiny_models import build_tiny_sd
from selma.tuners.style_inject import StyleInjectConfig, style_inject_layers, style_inject_state_dict

QV = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared 2-core machine: two threads oversubscribe it
    yield
    torch.set_num_threads(threads)


@functools.cache
def _unet() -> torch.nn.Module:
    return build_tiny_sd(seed=0).unet


def fresh_unet() -> torch.nn.Module:
    return copy.deepcopy(_unet())


def unet_inputs() -> tuple:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(2, 4, 16, 16, generator=gen), torch.tensor([10, 500]), torch.randn(2, 77, 32, generator=gen)


def run(unet: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return unet(*unet_inputs()).sample


CONFIGS = {
    "full": dict(r=4, num_styles=3, alpha=8, target_modules=["to_q", "to_v"]),
    "dma-only": dict(r=2, num_styles=2, use_sta=False, target_modules=["to_k"]),
    "sta-only": dict(r=2, num_styles=1, use_dma=False, target_modules=["to_q"]),
    "conv": dict(r=2, num_styles=2, target_modules=["conv1", "proj_in"]),
}


def trained(name: str, seed: int = 0) -> tuple[torch.nn.Module, StyleInjectConfig]:
    """A tiny UNet with adapter 'default' of config `name`, every tensor random (as if trained)."""
    unet, config = fresh_unet(), StyleInjectConfig(**CONFIGS[name])
    torch.manual_seed(seed)
    unet.add_adapter(config)
    with torch.no_grad():
        for p in style_inject_state_dict(unet).values():
            p.copy_(torch.randn_like(p) * 0.2)
    return unet, config


@pytest.mark.parametrize("name", CONFIGS)
def test_save_load_apply_round_trip_is_exact(name, tmp_path):
    unet, config = trained(name)
    path = save_style_inject_expert(tmp_path / "e.safetensors", unet, config, {"skill": "art", "steps": 7})
    expert = load_style_inject_expert(path)
    state = style_inject_state_dict(unet)
    assert expert.tensors.keys() == state.keys()
    assert all(torch.equal(expert.tensors[k], state[k]) for k in state)
    assert expert.config.to_json_dict() == config.to_json_dict()
    fresh = apply_style_inject_expert(fresh_unet(), expert)
    assert torch.equal(run(fresh), run(unet))
    assert set(style_inject_layers(fresh)) == set(expert.module_names)  # exactly the expert's modules


def test_an_expert_with_nan_values_is_refused_naming_the_file_and_tensor(tmp_path):
    from safetensors.torch import load_file, save_file

    unet, config = trained("full")
    path = save_style_inject_expert(tmp_path / "e.safetensors", unet, config, {"skill": "art"})
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata()
    tensors = load_file(str(path))
    key = sorted(tensors)[0]
    tensors[key] = torch.full_like(tensors[key], float("inf"))
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=header)
    with pytest.raises(
        ValueError, match=rf"bad\.safetensors: 1 tensor\(s\) hold NaN or Inf values, the first '{key}'"
    ):
        load_style_inject_expert(tmp_path / "bad.safetensors")


def test_the_header_describes_the_expert(tmp_path):
    unet, config = trained("full")
    training = {"method": "styleinject", "rank": 4, "seed": 3}
    metadata = {"skill": "art", "base_model": "UNet2DConditionModel:abc", "steps": 7, "config": training, "x": [1]}
    path = save_style_inject_expert(tmp_path / "e.safetensors", unet, config, metadata)
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata()
    assert header["selma.format"] == FORMAT == "styleinject/1"
    assert header["selma.method"] == "styleinject"
    assert json.loads(header["selma.styleinject_config"])["num_styles"] == 3
    assert (header["selma.skill"], header["selma.base_model"], header["selma.steps"]) == (
        "art",
        metadata["base_model"],
        "7",
    )
    assert json.loads(header["selma.config"]) == training and "selma.version" in header
    loaded = load_style_inject_expert(path).metadata
    assert {k: loaded[k] for k in metadata} == metadata


def test_module_names_are_diffusers_names_in_natural_order():
    unet, config = trained("full")
    expert = style_inject_expert_from_model(unet)
    assert expert.module_names[0] == QV and len(expert.module_names) == 24
    assert expert.module_tensors(QV).keys() == {
        "styleinject_down",
        "styleinject_up",
        "styleinject_router.weight",
        "styleinject_router.bias",
        "styleinject_hyper.weight",
        "styleinject_hyper.bias",
    }
    assert expert.config.r == 4 and expert.config.num_styles == 3


def test_ablation_experts_hold_no_router_or_no_hypernetwork():
    dma = style_inject_expert_from_model(trained("dma-only")[0])
    sta = style_inject_expert_from_model(trained("sta-only")[0])
    assert not any("hyper" in k for k in dma.tensors) and any("router" in k for k in dma.tensors)
    assert not any("router" in k for k in sta.tensors) and any("hyper" in k for k in sta.tensors)


def test_strength_scales_the_expert_and_zero_is_the_base_model():
    unet, _ = trained("full")
    expert = style_inject_expert_from_model(unet)
    base = run(fresh_unet())
    assert torch.equal(run(apply_style_inject_expert(fresh_unet(), expert, strength=0.0)), base)
    half = run(apply_style_inject_expert(fresh_unet(), expert, strength=0.5))
    assert not torch.allclose(half, base, atol=1e-5) and not torch.allclose(half, run(unet), atol=1e-5)
    with pytest.raises(ValueError, match=r"strength must be a finite number"):
        apply_style_inject_expert(fresh_unet(), expert, strength=float("nan"))


@pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute")  # a second adapter, on purpose
def test_the_expert_sits_next_to_a_lora_and_its_name_must_be_free():
    unet, _ = trained("full")
    expert = style_inject_expert_from_model(unet)
    target = fresh_unet()
    target.add_adapter(LoraConfig(r=2, target_modules=["to_q"]), adapter_name="lora")
    apply_style_inject_expert(target, expert, adapter_name="si")
    assert set(target.peft_config) == {"lora", "si"}
    with pytest.raises(ValueError, match=r"already has an adapter named 'si'"):
        apply_style_inject_expert(target, expert, adapter_name="si")


def test_an_expert_for_another_model_names_the_module_and_both_shapes():
    expert = style_inject_expert_from_model(trained("full")[0])
    other = StyleInjectExpert(expert.config, {k.replace("to_q", "to_x"): v for k, v in expert.tensors.items()})
    with pytest.raises(ValueError, match=r"module '.*attn1\.to_x' \(weight shape \(32, 32\)\) does not exist"):
        check_style_inject_fits(other, fresh_unet())
    wide = dict(expert.tensors)
    wide[f"{QV}.styleinject_down"] = torch.zeros(3, 4, 64)
    wide[f"{QV}.styleinject_router.weight"] = torch.zeros(3, 64)
    with pytest.raises(ValueError, match=rf"module '{QV}' has weight shape \(32, 64\) in the expert but \(32, 32\)"):
        check_style_inject_fits(StyleInjectExpert(expert.config, wide), fresh_unet())


def test_damaged_or_foreign_files_are_refused_with_the_reason(tmp_path):
    unet, config = trained("full")
    state = {k: v.contiguous() for k, v in style_inject_state_dict(unet).items()}
    good = save_style_inject_expert(tmp_path / "good.safetensors", state, config)
    header = {"selma.format": FORMAT, "selma.method": "styleinject"}
    with safe_open(str(good), framework="pt") as f:
        header["selma.styleinject_config"] = f.metadata()["selma.styleinject_config"]
    missing = {k: v for k, v in state.items() if not k.endswith("hyper.bias")}
    save_file(missing, tmp_path / "missing.safetensors", metadata=header)
    with pytest.raises(
        ValueError, match=r"does not match its config \(use_dma=True, use_sta=True\): missing styleinj"
    ):
        load_style_inject_expert(tmp_path / "missing.safetensors")
    reshaped = {**state, f"{QV}.styleinject_down": torch.zeros(2, 4, 32)}
    save_file(reshaped, tmp_path / "shape.safetensors", metadata=header)
    with pytest.raises(ValueError, match=r"styleinject_down has shape \(2, 4, 32\), but r=4, num_styles=3, num_exp"):
        load_style_inject_expert(tmp_path / "shape.safetensors")
    save_file({"x.lora_down.weight": torch.zeros(2, 3)}, tmp_path / "lora.safetensors")
    with pytest.raises(
        ValueError, match=r"not a StyleInject expert \(format None, method 'lora'\); .*load_lora_expert"
    ):
        load_style_inject_expert(tmp_path / "lora.safetensors")
    with pytest.raises(ValueError, match=r"end in \.safetensors"):
        save_style_inject_expert(tmp_path / "e.pt", state, config)
    with pytest.raises(ValueError, match=r"'lin0' is not a diffusers UNet module name"):
        one_module = StyleInjectExpert(config, state).module_tensors(QV)
        save_style_inject_expert(tmp_path / "e.safetensors", {f"lin0.{p}": t for p, t in one_module.items()}, config)


def test_lora_loaders_point_at_the_styleinject_loader(tmp_path):
    unet, config = trained("full")
    path = save_style_inject_expert(tmp_path / "art.safetensors", unet, config, {"skill": "art"})
    ref = ExpertRef.from_file(path)
    assert (ref.method, ref.skill) == ("styleinject", "art")
    with pytest.raises(ValueError, match=r"holds a StyleInject expert.*load_style_inject_expert"):
        ref.load()
    with pytest.raises(ValueError, match=r"is a StyleInject expert, not a LoRA expert; .*load_style_inject_expert"):
        load_lora_expert(path)
