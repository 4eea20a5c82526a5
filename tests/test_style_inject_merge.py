"""Merging StyleInject experts: stacking equals the weighted sum of the experts' updates (per layer, Linear and
Conv2d, mixed ranks / alphas / modules / switches, stacked inputs), one expert with weight 1 comes back unchanged,
parameter averaging only from a shared init, and `selma merge` routing StyleInject files here."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from peft import inject_adapter_in_model
from torch import nn

from selma.cli import main
from selma.experts.lora_expert import LoraExpert, LoraModule
from selma.experts.lora_files import save_lora_expert
from selma.experts.style_inject_files import StyleInjectExpert, apply_style_inject_expert, load_style_inject_expert
from selma.experts.style_inject_from_model import style_inject_expert_from_model
from selma.experts.style_inject_save import save_style_inject_expert
from selma.merging.style_inject_averaging import average_style_inject_experts
from selma.merging.style_inject_merge import StyleInjectMergeConfig, merge_style_inject_experts
from selma.merging.style_inject_stacking import stack_style_inject_experts
from selma.testing.tiny_models import build_tiny_sd
from selma.tuners.style_inject import StyleInjectConfig, record_router, style_inject_state_dict


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared 2-core machine: two threads oversubscribe it
    yield
    torch.set_num_threads(threads)


class Pair(nn.Module):
    """A Linear and a Conv2d side by side, each fed its own input: the model output is each layer's output."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin, self.conv = nn.Linear(10, 20), nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lin(x), self.conv(image)


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(3, 5, 10, generator=gen), torch.randn(3, 3, 6, 6, generator=gen)


def outputs(model: nn.Module) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        return model(*inputs())


def expert(seed: int, **config) -> StyleInjectExpert:
    """A random ('trained') expert on Pair."""
    model = Pair()
    torch.manual_seed(seed)
    settings = dict(r=2, num_styles=2, target_modules=["lin", "conv"], init_weights=False) | config
    inject_adapter_in_model(StyleInjectConfig(**settings), model)
    return style_inject_expert_from_model(model)


def applied(merged: StyleInjectExpert) -> tuple[torch.Tensor, ...]:
    return outputs(apply_style_inject_expert(Pair(), merged))


def weighted_sum(experts: list[StyleInjectExpert], weights: list[float]) -> tuple[torch.Tensor, ...]:
    """SELMA's merge per layer: W0 x + Σ_k w_k (y_k − W0 x), with y_k each expert applied alone."""
    base = outputs(Pair())
    result = [b.double() for b in base]
    for e, w in zip(experts, weights, strict=True):
        for i, y in enumerate(applied(e)):
            result[i] += w * (y.double() - base[i].double())
    return tuple(result)


def assert_outputs_close(got: tuple, expected: tuple) -> None:
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g.double(), e, rtol=1e-5, atol=1e-6)


STACKING_CASES = {
    "same-config": ([dict(), dict(), dict()], [0.5, 0.3, 0.2]),
    "ranks-alphas-modules-sta": (
        [dict(r=2, alpha=2), dict(r=3, alpha=9, target_modules=["lin"]), dict(r=1, use_sta=False)],
        [1.0, 0.7, -0.4],
    ),
    "with-and-without-router": (
        [dict(num_styles=1), dict(num_styles=1, use_dma=False), dict(num_styles=1, use_sta=False)],
        [1 / 3] * 3,
    ),
}


@pytest.mark.parametrize("case", STACKING_CASES)
def test_stacking_is_the_weighted_sum_of_the_experts_updates(case):
    configs, weights = STACKING_CASES[case]
    experts = [expert(seed, **config) for seed, config in enumerate(configs)]
    merged = stack_style_inject_experts(experts, weights)
    assert merged.config.num_experts == 3 and merged.config.expert_weights == weights
    got = applied(merged)
    assert_outputs_close(got, weighted_sum(experts, weights))
    assert not torch.allclose(got[0], outputs(Pair())[0], atol=1e-3)  # the merge does something


def test_a_fresh_stacked_adapter_is_the_identity_and_every_part_learns():
    model, base = Pair(), outputs(Pair())
    inject_adapter_in_model(
        StyleInjectConfig(r=2, num_styles=2, target_modules=["lin", "conv"], num_experts=3, expert_weights=[1, 2, 3]),
        model,
    )
    assert all(torch.equal(g, e) for g, e in zip(outputs(model), base, strict=True))
    params = {n: p for n, p in model.named_parameters() if "styleinject_" in n}
    optimizer = torch.optim.SGD(params.values(), lr=0.1)
    for _ in range(2):  # at the zero init only B and the hypernetwork get gradients (see test_style_inject)
        optimizer.zero_grad()
        sum(out.square().mean() for out in model(*inputs())).backward()
        optimizer.step()
    assert all(p.grad.abs().sum() > 0 for p in params.values())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(num_experts=0), r"num_experts must be a positive integer \(1 = a plain adapter; K = K stacked"),
        (dict(num_experts=2, expert_weights=[1.0]), r"expert_weights must be None or 2 finite numbers"),
    ],
)
def test_the_stacked_layout_is_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StyleInjectConfig(target_modules=["lin"], **kwargs)


def test_stacked_experts_flatten_into_a_new_stack():
    a, b, c = expert(0), expert(1), expert(2)
    inner = stack_style_inject_experts([a, b], [0.5, 0.25])
    outer = stack_style_inject_experts([inner, c], [2.0, 1.0])
    assert outer.config.num_experts == 3 and outer.config.expert_weights == [1.0, 0.5, 1.0]
    assert_outputs_close(applied(outer), weighted_sum([a, b, c], [1.0, 0.5, 1.0]))


def test_one_expert_with_weight_one_comes_back_unchanged():
    alone = expert(0, r=3, alpha=5)
    merged = stack_style_inject_experts([alone], [1.0])
    assert merged.config.num_experts == 1 and merged.config.expert_weights is None
    assert merged.tensors.keys() == alone.tensors.keys()
    assert all(torch.equal(merged.tensors[k], alone.tensors[k]) for k in alone.tensors)
    assert all(torch.equal(g, e) for g, e in zip(applied(merged), applied(alone), strict=True))


def test_each_stacked_router_keeps_its_own_softmax():
    merged = stack_style_inject_experts([expert(0, num_styles=3), expert(1, num_styles=3)], [0.5, 0.5])
    model = apply_style_inject_expert(Pair(), merged)
    with record_router(model) as recorder:
        outputs(model)
    probs = recorder.stacked("lin")
    assert probs.shape == (1, 3, 6)  # 1 call, batch 3, 2 experts x 3 styles
    torch.testing.assert_close(probs.reshape(1, 3, 2, 3).sum(-1), torch.ones(1, 3, 2))


def test_stacking_refuses_experts_it_cannot_stack():
    with pytest.raises(
        ValueError, match=r"expert 1 has num_styles 3, expert 0 has 2; stacking needs experts with the same"
    ):
        stack_style_inject_experts([expert(0), expert(1, num_styles=3)], [0.5, 0.5])
    narrow = StyleInjectExpert(
        expert(1).config,
        {k: v[..., :5] if k.startswith("lin.styleinject_down") else v for k, v in expert(1).tensors.items()},
    )
    narrow.tensors["lin.styleinject_router.weight"] = narrow.tensors["lin.styleinject_router.weight"][:, :5]
    with pytest.raises(ValueError, match=r"different base models: module 'lin' adapts weight shape \(20, 10\) in ex"):
        stack_style_inject_experts([expert(0), narrow], [0.5, 0.5])


# ------------------------------------------------------------------------------------------ averaging


@pytest.fixture(scope="module")
def unet() -> nn.Module:
    return build_tiny_sd(seed=0).unet


def unet_expert(unet: nn.Module, init_seed: int, nudge_seed: int, **config) -> StyleInjectExpert:
    """An expert 'trained' from the init `init_seed` draws: that init plus a seeded nudge (B off zero)."""
    model = copy.deepcopy(unet)
    settings = dict(r=2, num_styles=2, target_modules=["to_v"]) | config
    torch.manual_seed(init_seed)
    model.add_adapter(StyleInjectConfig(**settings))
    gen = torch.Generator().manual_seed(nudge_seed)
    with torch.no_grad():
        for p in style_inject_state_dict(model).values():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    result = style_inject_expert_from_model(model)
    result.metadata = {"skill": f"s{nudge_seed}", "init_seed": init_seed, "base_model": "UNet2DConditionModel:x"}
    result.metadata["config"] = {"seed": init_seed, "init": "gaussian"}
    return result


def test_averaging_experts_from_one_init_averages_every_tensor(unet):
    a, b = unet_expert(unet, 0, 1), unet_expert(unet, 0, 2)
    result = merge_style_inject_experts([a, b], StyleInjectMergeConfig("average", (0.75, 0.25)))
    for key, tensor in result.expert.tensors.items():
        torch.testing.assert_close(tensor, 0.75 * a.tensors[key] + 0.25 * b.tensors[key])
    recipe = result.recipe
    assert (recipe["method"], recipe["exact"], recipe["layout"]) == ("average", False, "averaged")
    assert recipe["shared_init"] == {"init_seed": 0, "base_model": "UNet2DConditionModel:x", "init": "gaussian"}
    assert result.expert.config.num_experts == 1 and result.expert.metadata["skill"] == "s1+s2"


def test_averaging_needs_a_provably_shared_init(unet):
    a = unet_expert(unet, 0, 1)
    with pytest.raises(ValueError, match=r"expert 1 \(skill 's2'\) has init seed 1, expert 0 \(skill 's1'\) has 0"):
        average_style_inject_experts([a, unet_expert(unet, 1, 2)], [0.5, 0.5])
    unseeded = unet_expert(unet, 0, 2)
    unseeded.metadata = {}
    with pytest.raises(ValueError, match=r"expert 1 records no init seed"):
        average_style_inject_experts([a, unseeded], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"has r 4, expert 0 \(skill 's1'\) has 2; parameter averaging needs"):
        average_style_inject_experts([a, unet_expert(unet, 0, 2, r=4)], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"has modules \["):
        average_style_inject_experts([a, unet_expert(unet, 0, 2, target_modules=["to_q"])], [0.5, 0.5])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(method="svd"), r"method='svd' is not available for StyleInject experts; use one of linear, cat, avera"),
        (dict(weights=(1.0, float("inf"))), r"weights=\(1.0, inf\) must be a non-empty list of finite numbers"),
    ],
)
def test_the_merge_config_refuses_what_it_cannot_do(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StyleInjectMergeConfig(**kwargs)


def test_weights_default_to_the_average_and_must_match_the_experts():
    assert StyleInjectMergeConfig().resolve_weights(4) == [0.25] * 4
    assert StyleInjectMergeConfig("cat").resolve_weights(2) == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"has 2 value\(s\) but 3 expert\(s\) were given"):
        StyleInjectMergeConfig(weights=(0.5, 0.5)).resolve_weights(3)


# ------------------------------------------------------------------------------------------ files and the CLI


def test_selma_merge_stacks_styleinject_files_exactly(unet, tmp_path, capsys):
    experts = [unet_expert(unet, 0, 1), unet_expert(unet, 0, 2, target_modules=["to_v", "to_q"])]
    paths = [save_style_inject_expert(tmp_path / f"e{i}.safetensors", e, e.config) for i, e in enumerate(experts)]
    out = tmp_path / "merged.safetensors"
    assert main(["merge", *map(str, paths), "--weights", "0.6,0.4", "-o", str(out)]) == 0
    assert "StyleInject merge linear (exact, stacked) of 2 expert(s), weights 0.6, 0.4" in capsys.readouterr().out
    merged = load_style_inject_expert(out)
    in_memory = stack_style_inject_experts(experts, [0.6, 0.4])
    assert all(torch.equal(merged.tensors[k], in_memory.tensors[k]) for k in in_memory.tensors)
    assert merged.metadata["merge"]["inputs"][1]["file"] == "e1.safetensors" and merged.metadata["skill"] == "s1+s2"
    report = json.loads((tmp_path / "merged.report.json").read_text())
    assert report["modules"]["down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"] == [1]
    x = (torch.randn(1, 4, 16, 16), torch.tensor([500]), torch.randn(1, 77, 32))
    with torch.no_grad():
        from_file = apply_style_inject_expert(copy.deepcopy(unet), merged)(*x).sample
        from_memory = apply_style_inject_expert(copy.deepcopy(unet), in_memory)(*x).sample
    assert torch.equal(from_file, from_memory)
    assert main(["merge", *map(str, paths), "--method", "average", "-o", str(tmp_path / "avg.safetensors")]) == 2
    assert "has modules" in capsys.readouterr().err  # the second expert adapts more modules: no shared init


def test_selma_merge_refuses_mixed_methods_and_lora_only_flags(unet, tmp_path, capsys):
    si = unet_expert(unet, 0, 1)
    si_path = save_style_inject_expert(tmp_path / "si.safetensors", si, si.config)
    name = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    lora_path = save_lora_expert(
        tmp_path / "lora.safetensors", LoraExpert({name: LoraModule(torch.zeros(2, 32), torch.zeros(32, 2), 2.0)})
    )
    out = str(tmp_path / "m.safetensors")
    assert main(["merge", str(si_path), str(lora_path), "-o", out]) == 2
    assert "si.safetensors is a 'styleinject' expert; only LoRA experts can be merged here with lora experts" in (
        capsys.readouterr().err
    )
    assert main(["merge", str(si_path), "--rank", "4", "-o", out]) == 2
    assert "--rank apply to LoRA merges only" in capsys.readouterr().err
    assert main(["merge", str(lora_path), "--method", "average", "-o", out]) == 2
    assert "--method average is for StyleInject experts" in capsys.readouterr().err
