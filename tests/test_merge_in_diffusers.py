"""Merged experts on a real (tiny) diffusers UNet: the adapter self-check (`linear`/`cat` = every expert applied at
once with its weight through diffusers `set_adapters`), and a merged file loading in diffusers' `load_lora_weights`
and in our loader with the output the experts give together."""

from __future__ import annotations

import pytest
import torch

from selma.experts.lora_expert import LoraExpert, LoraModule
from selma.experts.lora_files import apply_lora_expert, load_lora_expert
from selma.experts.ref import ExpertRef
from selma.merging import MergeConfig, check_linear_against_adapters, merge_expert_files, merge_lora_experts
from selma.merging.adapter_check import fixed_unet_inputs
from selma.testing.tiny_models import build_tiny_sd, build_tiny_sdxl

# several adapters on one UNet are the point of these tests
pytestmark = pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute")

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
BUILDERS = {"sd": build_tiny_sd, "sdxl": build_tiny_sdxl}


def targets(unet) -> list[str]:
    return [n for n, m in unet.named_modules() if n.endswith(TARGETS) and isinstance(m, torch.nn.Linear)]


def random_expert(unet, names: list[str], rank: int, seed: int, skill: str) -> LoraExpert:
    gen = torch.Generator().manual_seed(seed)
    modules = {}
    for name in names:
        layer = unet.get_submodule(name)
        down = torch.randn(rank, layer.in_features, generator=gen) * 0.2
        modules[name] = LoraModule(down, torch.randn(layer.out_features, rank, generator=gen) * 0.2, alpha=rank / 2)
    return LoraExpert(modules, {"skill": skill})


def mixed_experts(unet) -> list[LoraExpert]:
    """Ranks 4 and 8, the second adapting every other module only."""
    names = targets(unet)
    return [random_expert(unet, names, 4, 1, "counting"), random_expert(unet, names[::2], 8, 2, "spatial")]


def forward(unet) -> torch.Tensor:
    with torch.no_grad():
        return unet(**fixed_unet_inputs(unet)).sample


@pytest.mark.parametrize(("model", "method", "weights"), [("sd", "linear", None), ("sdxl", "cat", [0.7, -0.4])])
def test_exact_merges_equal_the_experts_applied_together(model, method, weights):
    unet = BUILDERS[model]().unet
    experts = mixed_experts(unet)
    merged = merge_lora_experts(experts, MergeConfig(method, weights=weights)).expert
    base = forward(unet)
    check = check_linear_against_adapters(unet, experts, weights, merged)
    assert check.passed and check.max_relative_error < 1e-4, str(check)
    # the check leaves the UNet as it found it: no adapters, the base output
    assert not getattr(unet, "peft_config", None) and torch.equal(forward(unet), base)


def test_the_adapter_check_takes_the_recipe_weights_and_restores_active_adapters():
    unet = build_tiny_sd().unet
    experts = mixed_experts(unet)
    apply_lora_expert(unet, experts[0], adapter_name="mine")
    before = forward(unet)
    merged = merge_lora_experts(experts, MergeConfig("linear", weights=[0.3, 0.9])).expert
    assert check_linear_against_adapters(unet, experts, None, merged).passed  # weights from merged's recipe
    assert unet.active_adapters() == ["mine"] and torch.equal(forward(unet), before)
    with pytest.raises(ValueError, match="already has an adapter named 'selma_check_0'"):
        apply_lora_expert(unet, experts[1], adapter_name="selma_check_0")
        check_linear_against_adapters(unet, experts, None, merged)


def test_the_adapter_check_catches_a_lossy_or_wrongly_weighted_merge():
    unet = build_tiny_sd().unet
    experts = mixed_experts(unet)
    lossy = merge_lora_experts(experts, MergeConfig("svd", rank=1)).expert
    check = check_linear_against_adapters(unet, experts, [0.5, 0.5], lossy)
    assert not check.passed and check.max_relative_error > 1e-2
    average = merge_lora_experts(experts, MergeConfig("linear")).expert
    assert not check_linear_against_adapters(unet, experts, [1.0, 1.0], average).passed


def test_a_merged_file_loads_in_diffusers_and_our_loader_and_changes_the_output_as_expected(tmp_path):
    pipe = build_tiny_sd()
    experts = mixed_experts(pipe.unet)
    refs = [ExpertRef(tmp_path / f"e{k}.safetensors", e, "lora", e.metadata["skill"]) for k, e in enumerate(experts)]
    weights = [0.6, 0.4]
    merged = merge_expert_files(refs, MergeConfig("linear", weights=weights), tmp_path / "merged.safetensors")
    base = forward(pipe.unet)

    together = build_tiny_sd().unet
    for k, expert in enumerate(experts):
        apply_lora_expert(together, expert, adapter_name=f"e{k}")
    together.set_adapters(["e0", "e1"], weights)
    expected = forward(together)

    pipe.load_lora_weights(str(merged.path), adapter_name="merged")  # diffusers reads our kohya-keyed file
    from_diffusers = forward(pipe.unet)
    ours = forward(apply_lora_expert(build_tiny_sd().unet, load_lora_expert(merged.path)))

    assert (expected - base).abs().max() > 1e-2  # the experts do change the output
    torch.testing.assert_close(from_diffusers, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)
