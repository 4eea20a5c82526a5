"""StyleInject as a PEFT method: identity at init, the formulas, gradients, ablations, router recording,
state-dict round trips, the paper's Table IV parameter counts, and diffusers integration, on tiny real models."""

from __future__ import annotations

import copy
import functools
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftConfig, get_peft_model_state_dict, inject_adapter_in_model
from peft.mapping import get_peft_config
from peft.utils import PeftType
from safetensors.torch import load_file, save_file
from torch import nn

from selma.testing.tiny_models import build_sd15_unet, build_tiny_sd
from selma.tuners.style_inject import (
    StyleInjectConfig,
    adain_rescale,
    load_style_inject_state_dict,
    mixed_down_conv2d,
    mixed_down_linear,
    record_router,
    style_inject_layers,
    style_inject_state_dict,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared, loaded machine OpenMP's spin-waiting makes
    a tiny-UNet forward ~100x slower with 2 threads than with 1; restore the setting for other test modules."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------- tiny models


class MLP(nn.Module):
    """PEFT's test model: Linear(10, 20) -> ReLU -> Linear(20, 2), fed [batch, tokens, 10]."""

    def __init__(self) -> None:
        super().__init__()
        self.lin0, self.lin1 = nn.Linear(10, 20), nn.Linear(20, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin1(torch.relu(self.lin0(x)))


class ConvNet(nn.Module):
    """3x3 conv (padding 1) -> ReLU -> 3x3 conv (stride 2) -> ReLU -> 1x1 conv, fed [batch, 3, 8, 8]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv1 = nn.Conv2d(8, 6, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(6, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu(self.conv1(torch.relu(self.conv0(x)))))


@functools.cache
def _tiny_sd_unet() -> nn.Module:
    return build_tiny_sd(seed=0).unet


def tiny_unet() -> nn.Module:
    return copy.deepcopy(_tiny_sd_unet())


def _seeded(factory: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        torch.manual_seed(0)
        return factory()

    return build


def mlp_inputs() -> tuple:
    return (torch.randn(3, 5, 10, generator=torch.Generator().manual_seed(1)),)


def conv_inputs() -> tuple:
    return (torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)),)


def unet_inputs() -> tuple:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(2, 4, 16, 16, generator=gen), torch.tensor([10, 500]), torch.randn(2, 77, 32, generator=gen)


def run(model: nn.Module, inputs: tuple) -> torch.Tensor:
    out = model(*inputs)
    return out.sample if hasattr(out, "sample") else out


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[], nn.Module]
    inputs: Callable[[], tuple]
    config: dict = field(default_factory=dict)

    def make_config(self, **overrides) -> StyleInjectConfig:
        return StyleInjectConfig(**{**self.config, **overrides})

    def adapted(self, **overrides) -> nn.Module:
        model = self.build()
        inject_adapter_in_model(self.make_config(**overrides), model)
        return model


TEST_CASES = [
    Case("mlp-n1", _seeded(MLP), mlp_inputs, dict(r=2, num_styles=1, alpha=2, target_modules=["lin0", "lin1"])),
    Case("mlp-n4", _seeded(MLP), mlp_inputs, dict(r=3, num_styles=4, alpha=6, target_modules=["lin0", "lin1"])),
    Case("mlp-dma-only", _seeded(MLP), mlp_inputs, dict(r=3, num_styles=4, use_sta=False, target_modules=["lin0"])),
    Case("mlp-sta-only", _seeded(MLP), mlp_inputs, dict(r=2, num_styles=1, use_dma=False, target_modules=["lin0"])),
    Case(
        "conv-n3", _seeded(ConvNet), conv_inputs, dict(r=2, num_styles=3, target_modules=["conv0", "conv1", "conv2"])
    ),
    Case(
        "conv-sta-only", _seeded(ConvNet), conv_inputs, dict(r=2, num_styles=1, use_dma=False, target_modules="conv.")
    ),
    Case("unet-qv-n4", tiny_unet, unet_inputs, dict(r=4, num_styles=4, alpha=4, target_modules=["to_q", "to_v"])),
    Case("unet-conv-n2", tiny_unet, unet_inputs, dict(r=2, num_styles=2, target_modules=["conv1", "proj_in", "to_k"])),
]
ROUTED_CASES = [case for case in TEST_CASES if case.config.get("use_dma", True)]


def params_of(model: nn.Module, part: str = "styleinject_") -> dict[str, nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if part in name}


# ---------------------------------------------------------------------------- an independent reference


def reference_output(layer: nn.Module, adapter: str, x: torch.Tensor) -> torch.Tensor:
    """The layer's output from DESIGN §3.5 in float64, written the long way: a Python loop over the styles and
    the paper's AdaIN form y = (σ + γ)(h − μ)/σ + μ."""
    base = layer.get_base_layer()
    conv = isinstance(base, nn.Conv2d)
    x, h = x.double(), base(x).double()
    down, up = layer.styleinject_down[adapter].double(), layer.styleinject_up[adapter].double()
    scale = layer.styleinject_scaling[adapter] * layer.styleinject_strength[adapter]
    if conv:
        conv_args = dict(stride=base.stride, padding=base.padding, dilation=base.dilation)
        route_in, dims = x.sum(dim=(2, 3), keepdim=True), (2, 3)
    else:
        x = x.reshape(x.shape[0], -1, x.shape[-1])
        h = h.reshape(x.shape[0], -1, h.shape[-1])
        route_in, dims = x.mean(dim=1), (1,)
    if adapter in layer.styleinject_router:
        router = layer.styleinject_router[adapter]
        logits = (F.conv2d if conv else F.linear)(route_in, router.weight.double(), router.bias.double())
        p = torch.softmax(logits.flatten(1), dim=-1)
    else:
        p = torch.ones(x.shape[0], 1, dtype=torch.float64)
    z = 0
    for i in range(down.shape[0]):
        a_i_x = F.conv2d(x, down[i], **conv_args) if conv else x @ down[i].T
        z = z + p[:, i].reshape(-1, *[1] * (a_i_x.dim() - 1)) * a_i_x
    h = h + scale * (F.conv2d(z, up) if conv else z @ up.T)
    if adapter in layer.styleinject_hyper:
        hyper = layer.styleinject_hyper[adapter]
        gamma = layer.styleinject_strength[adapter] * (p @ hyper.weight.double().T + hyper.bias.double())
        gamma = gamma[:, :, None, None] if conv else gamma[:, None, :]
        mu, var = h.mean(dim=dims, keepdim=True), h.var(dim=dims, keepdim=True, unbiased=False)
        sigma = torch.sqrt(var + layer.styleinject_eps[adapter])
        h = (sigma + gamma) * (h - mu) / sigma + mu
    return h


def captured_layer_calls(model: nn.Module, inputs: tuple) -> list[tuple[nn.Module, torch.Tensor, torch.Tensor]]:
    """Run the model once and keep (layer, input, output) of every StyleInject layer call."""
    calls = []
    hooks = [
        layer.register_forward_hook(lambda m, args, out: calls.append((m, args[0], out)))
        for layer in style_inject_layers(model).values()
    ]
    with torch.no_grad():
        run(model, inputs)
    for hook in hooks:
        hook.remove()
    return calls


# ------------------------------------------------------------------------------------------ the matrix


@pytest.mark.parametrize("case", TEST_CASES, ids=lambda c: c.id)
def test_a_fresh_adapter_returns_the_base_output_exactly(case: Case) -> None:
    model, inputs = case.build(), case.inputs()
    with torch.no_grad():
        before = run(model, inputs)
        inject_adapter_in_model(case.make_config(), model)
        after = run(model, inputs)
    assert params_of(model)
    assert torch.equal(before, after)


@pytest.mark.parametrize("case", TEST_CASES, ids=lambda c: c.id)
def test_every_layer_computes_the_design_formula(case: Case) -> None:
    # B and the hypernetwork random too, so every term counts; float64 so that the check compares formulas,
    # not float32 rounding (AdaIN divides by sigma, which amplifies it for near-constant channels)
    model = case.adapted(init_weights=False).double()
    inputs = tuple(t.double() if torch.is_tensor(t) and t.is_floating_point() else t for t in case.inputs())
    calls = captured_layer_calls(model, inputs)
    assert len(calls) == len(style_inject_layers(model))
    for layer, x, out in calls:
        expected = reference_output(layer, "default", x).reshape(out.shape)
        torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-10)
        assert not torch.allclose(out, layer.get_base_layer()(x), atol=1e-4)  # the adapter does change it


@pytest.mark.parametrize("case", TEST_CASES, ids=lambda c: c.id)
def test_every_layers_gradients_equal_the_design_formulas(case: Case) -> None:
    # The layer's backward (AdaIN as one node with the closed-form gradient) against autograd through the long
    # reference formula, float64: the gradients of every adapter parameter and of the input.
    model = case.adapted(init_weights=False).double()
    inputs = tuple(t.double() if torch.is_tensor(t) and t.is_floating_point() else t for t in case.inputs())
    gen = torch.Generator().manual_seed(3)
    for layer, x, out in captured_layer_calls(model, inputs):
        x = x.detach().requires_grad_(True)
        params = [p for name, p in layer.named_parameters() if "styleinject_" in name]
        grad_out = torch.randn(out.shape, generator=gen, dtype=torch.float64)
        ours = torch.autograd.grad(layer(x), [x, *params], grad_out)
        expected = torch.autograd.grad(
            reference_output(layer, "default", x).reshape(out.shape), [x, *params], grad_out
        )
        for got, want in zip(ours, expected, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-10)


def test_adain_rescale_is_one_node_with_the_exact_gradient_and_in_place_only_without_autograd() -> None:
    gen = torch.Generator().manual_seed(4)
    h = torch.randn(2, 7, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    gamma = torch.randn(2, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: adain_rescale(a, b, 1e-5), (h, gamma))
    with torch.no_grad():
        plain = h.detach().clone()
        expected = adain_rescale(plain, gamma, 1e-5)
        assert torch.equal(plain, h)  # not in place unless asked
        result = adain_rescale(plain, gamma, 1e-5, in_place=True)
        assert result.data_ptr() == plain.data_ptr() and torch.allclose(result, expected, rtol=1e-12, atol=1e-12)
    traced = adain_rescale(h, gamma, 1e-5, in_place=True)  # autograd on: never overwrites its input
    assert traced.data_ptr() != h.data_ptr() and torch.allclose(traced, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", TEST_CASES, ids=lambda c: c.id)
def test_gradients_reach_every_parameter_once_off_the_zero_init(case: Case) -> None:
    model, inputs = case.adapted(), case.inputs()
    params = params_of(model)
    assert {name for name, p in model.named_parameters() if p.requires_grad} == set(params)
    target = torch.randn_like(run(model, inputs), generator=torch.Generator().manual_seed(2))
    optimizer = torch.optim.SGD(params.values(), lr=0.1)

    def gradients() -> dict[str, torch.Tensor]:
        optimizer.zero_grad()
        F.mse_loss(run(model, inputs), target).backward()
        return {name: p.grad for name, p in params.items()}

    # At exactly the init, B = 0 and the hypernetwork = 0, so dL/dA = s·Bᵀ(...) = 0 and p reaches the loss only
    # through B and γ: the A_i and the router get exactly zero gradient. B and the hypernetwork do not.
    first = gradients()
    for name, grad in first.items():
        moves_at_init = "styleinject_up" in name or "styleinject_hyper" in name
        assert (grad.abs().sum() > 0) == moves_at_init, name
    optimizer.step()
    # One step later B and the hypernetwork are non-zero and every parameter learns, except a router over a
    # single style: softmax of one logit is the constant 1 (Table IV still counts that router).
    single_style = case.config.get("num_styles") == 1
    for name, grad in gradients().items():
        assert (grad.abs().sum() > 0) != (single_style and "styleinject_router" in name), name


@pytest.mark.parametrize("case", ROUTED_CASES, ids=lambda c: c.id)
def test_router_probabilities_are_recorded_per_layer_and_sum_to_one(case: Case) -> None:
    model, inputs = case.adapted(init_weights=False), case.inputs()
    batch = inputs[0].shape[0]
    with record_router(model) as recorder:
        with torch.no_grad():
            run(model, inputs)
            run(model, inputs)
    assert set(recorder.layer_names) == set(style_inject_layers(model))  # (listed in call order)
    for name in recorder.layer_names:
        probs = recorder.stacked(name)
        assert probs.shape == (2, batch, case.config["num_styles"])
        torch.testing.assert_close(probs.sum(-1), torch.ones(2, batch))
        assert (probs > 0).all()
        assert torch.equal(probs[0], probs[1])  # one entry per forward, in call order
    with torch.no_grad():
        run(model, inputs)
    assert len(recorder.probs[recorder.layer_names[0]]) == 2  # detached once the block exits


@pytest.mark.parametrize("case", TEST_CASES, ids=lambda c: c.id)
def test_state_dict_save_load_round_trip_is_exact(case: Case, tmp_path) -> None:
    trained, inputs = case.adapted(init_weights=False), case.inputs()
    state = style_inject_state_dict(trained)
    assert set(state) == set(get_peft_model_state_dict(trained))  # the keys PEFT itself would save
    save_file(state, tmp_path / "expert.safetensors")

    fresh = case.adapted()
    load_style_inject_state_dict(fresh, load_file(tmp_path / "expert.safetensors"))
    reloaded = style_inject_state_dict(fresh)
    assert all(torch.equal(state[key], reloaded[key]) for key in state)
    with torch.no_grad():
        assert torch.equal(run(trained, inputs), run(fresh, inputs))


# ------------------------------------------------------------------------------------------ ablations


def test_dma_alone_has_no_hypernetwork_and_adds_only_the_low_rank_update() -> None:
    model = TEST_CASES[2].adapted(init_weights=False)
    layer = model.lin0
    assert not params_of(model, "styleinject_hyper") and params_of(model, "styleinject_router")
    x = mlp_inputs()[0]
    probs = torch.softmax(layer.styleinject_router["default"](x.mean(1)), -1)
    z = sum(probs[:, i, None, None] * (x @ a.T) for i, a in enumerate(layer.styleinject_down["default"]))
    expected = layer.base_layer(x) + layer.styleinject_scaling["default"] * z @ layer.styleinject_up["default"].T
    torch.testing.assert_close(layer(x), expected)


def test_sta_alone_has_no_router_and_rescales_a_plain_lora() -> None:
    model = TEST_CASES[3].adapted(init_weights=False)
    layer = model.lin0
    assert not params_of(model, "styleinject_router") and params_of(model, "styleinject_hyper")
    assert layer.styleinject_down["default"].shape == (1, 2, 10)
    x = mlp_inputs()[0]
    lora = layer.styleinject_up["default"] @ layer.styleinject_down["default"][0]
    h = layer.base_layer(x) + layer.styleinject_scaling["default"] * x @ lora.T
    hyper = layer.styleinject_hyper["default"]
    gamma = hyper.weight[:, 0] + hyper.bias  # p = 1
    mu, var = h.mean(1, keepdim=True), h.var(1, keepdim=True, unbiased=False)
    expected = (torch.sqrt(var + 1e-5) + gamma) * (h - mu) / torch.sqrt(var + 1e-5) + mu
    torch.testing.assert_close(layer(x), expected)
    with pytest.raises(ValueError, match="nothing to record"), record_router(model):
        pass


def test_a_2d_input_is_one_token_per_sample_for_which_sta_changes_nothing() -> None:
    model = TEST_CASES[1].adapted(init_weights=False)
    x = mlp_inputs()[0][:, 0]  # [batch, 10]
    out = model.lin0(x)
    assert out.shape == (3, 20)
    torch.testing.assert_close(out.double(), reference_output(model.lin0, "default", x).reshape(3, 20))
    model.lin0.styleinject_hyper["default"].bias.data += 5.0  # a large γ: still no effect on a single token
    torch.testing.assert_close(model.lin0(x), out)
    torch.testing.assert_close(model.lin0(x[:, None])[:, 0], out)


def test_parameter_count_per_layer_follows_the_switches() -> None:
    n, r, d_in, d_out = 4, 3, 10, 20
    counts = {}
    for use_dma, use_sta in ((True, True), (True, False), (False, True)):
        model = _seeded(MLP)()
        config = StyleInjectConfig(
            r=r, num_styles=n if use_dma else 1, use_dma=use_dma, use_sta=use_sta, target_modules=["lin0"]
        )
        inject_adapter_in_model(config, model)
        counts[use_dma, use_sta] = sum(p.numel() for p in params_of(model).values())
    assert counts[True, True] == n * r * d_in + r * d_out + (d_in * n + n) + (n * d_out + d_out)
    assert counts[True, False] == n * r * d_in + r * d_out + (d_in * n + n)
    assert counts[False, True] == r * d_in + r * d_out + (d_out + d_out)


# --------------------------------------------------------------------- the paper's Table IV (SD1.5 size)


@pytest.fixture(scope="module")
def sd15_meta_unet() -> nn.Module:
    return build_sd15_unet(device="meta")


@pytest.mark.parametrize(("num_styles", "millions"), [(1, "3.34"), (4, "8.41"), (16, "28.70")])
def test_table_iv_styleinject_parameter_counts_on_sd15(sd15_meta_unet, num_styles: int, millions: str) -> None:
    unet = copy.deepcopy(sd15_meta_unet)
    unet.add_adapter(StyleInjectConfig(r=32, num_styles=num_styles, alpha=32, target_modules=["to_q", "to_v"]))
    count = sum(p.numel() for p in params_of(unet).values())
    assert f"{count / 1e6:.2f}" == millions
    assert len(style_inject_layers(unet)) == 64  # 16 transformer blocks x (attn1, attn2) x (to_q, to_v)


@pytest.mark.parametrize(("rank", "millions"), [(32, "3.19"), (128, "12.75"), (512, "51.02")])
def test_table_iv_lora_parameter_counts_on_sd15(sd15_meta_unet, rank: int, millions: str) -> None:
    unet = copy.deepcopy(sd15_meta_unet)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_v"]))
    count = sum(p.numel() for name, p in unet.named_parameters() if "lora_" in name)
    assert f"{count / 1e6:.2f}" == millions


# ------------------------------------------------------------------------------- diffusers integration


def test_unet_add_adapter_is_exact_at_init_and_follows_diffusers_adapter_switches() -> None:
    unet, inputs = tiny_unet(), unet_inputs()
    with torch.no_grad():
        base = run(unet, inputs)
        unet.add_adapter(StyleInjectConfig(r=4, num_styles=4, target_modules=["to_q", "to_v"]))
        assert torch.equal(run(unet, inputs), base)
        state = {k: torch.randn_like(v) * 0.1 for k, v in style_inject_state_dict(unet).items()}
        load_style_inject_state_dict(unet, state)
        adapted = run(unet, inputs)
        assert not torch.allclose(adapted, base, atol=1e-4)
        unet.disable_adapters()
        assert torch.equal(run(unet, inputs), base)
        unet.enable_adapters()
        assert torch.equal(run(unet, inputs), adapted)
        unet.set_adapters(["default"], weights=[0.0])  # strength 0: Δ and γ vanish
        assert torch.equal(run(unet, inputs), base)
        unet.set_adapters(["default"], weights=[1.0])
        assert torch.equal(run(unet, inputs), adapted)


def test_router_is_recorded_per_denoising_step_with_cfg_while_a_pipeline_samples() -> None:
    pipe = build_tiny_sd(seed=0)
    pipe.set_progress_bar_config(disable=True)
    pipe.unet.add_adapter(StyleInjectConfig(r=4, num_styles=3, target_modules=["to_q", "to_v"], init_weights=False))
    with record_router(pipe.unet) as recorder:
        pipe(["two red apples", "a cat"], num_inference_steps=3, guidance_scale=7.5, output_type="latent")
    assert len(recorder.layer_names) == 24  # 6 transformer blocks x (attn1, attn2) x (to_q, to_v)
    for name in recorder.layer_names:
        probs = recorder.stacked(name)
        assert probs.shape == (3, 4, 3)  # steps x (2 uncond + 2 cond) x styles
        torch.testing.assert_close(probs.sum(-1), torch.ones(3, 4))
    cross_v = recorder.stacked("down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v")
    assert torch.equal(cross_v[0], cross_v[2])  # routed on the text alone: the same at every step
    assert not torch.allclose(cross_v[0, 2], cross_v[0, 3])  # but different per prompt (cond half)
    torch.testing.assert_close(cross_v[0, 0], cross_v[0, 1])  # the two uncond rows share the empty prompt


def test_a_second_import_of_the_package_works_with_the_first_registration(node_package) -> None:
    """ComfyUI imports the repository under its folder name while `selma` may be imported too."""
    other = importlib.import_module(f"{node_package.__name__}.selma.tuners.style_inject")
    assert other.StyleInjectConfig is not StyleInjectConfig
    model, inputs = _seeded(MLP)(), mlp_inputs()
    inject_adapter_in_model(
        other.StyleInjectConfig(r=2, num_styles=2, target_modules=["lin0"], init_weights=False), model
    )
    assert set(other.style_inject_state_dict(model)) == set(style_inject_state_dict(model))
    with other.record_router(model) as recorder:
        run(model, inputs)
    assert recorder.stacked("lin0").shape == (1, 3, 2)


# ------------------------------------------------------------------------- the fused down-projection


def _per_style_loop(x: torch.Tensor, down: torch.Tensor, coeffs: torch.Tensor, conv_args=None) -> torch.Tensor:
    terms = [
        coeffs[:, i].reshape(-1, *[1] * (x.dim() - 1))
        * (F.conv2d(x, down[i], **conv_args) if conv_args is not None else F.linear(x, down[i]))
        for i in range(down.shape[0])
    ]
    return torch.stack(terms).sum(0)


@pytest.mark.parametrize("strategy", ["auto", "stacked", "mix_weights"])
@pytest.mark.parametrize(("num_styles", "tokens"), [(1, 5), (4, 1), (4, 7), (16, 3)])
def test_fused_down_projection_equals_the_per_style_loop(strategy: str, num_styles: int, tokens: int) -> None:
    gen = torch.Generator().manual_seed(0)
    x, down = torch.randn(3, tokens, 10, generator=gen), torch.randn(num_styles, 4, 10, generator=gen)
    coeffs = torch.softmax(torch.randn(3, num_styles, generator=gen), -1)
    fused = mixed_down_linear(x, down, coeffs, strategy)
    assert fused.shape == (3, tokens, 4)
    torch.testing.assert_close(fused, _per_style_loop(x, down, coeffs))

    conv_args = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    x, down = torch.randn(3, 5, tokens + 4, 6, generator=gen), torch.randn(num_styles, 4, 5, 3, 2, generator=gen)
    fused = mixed_down_conv2d(x, down, coeffs, conv_args, strategy)
    torch.testing.assert_close(fused, _per_style_loop(x, down, coeffs, conv_args))


def test_bf16_base_with_fp32_adapter_keeps_dtype_and_identity() -> None:
    model = _seeded(MLP)().to(torch.bfloat16)
    x = mlp_inputs()[0].to(torch.bfloat16)
    with torch.no_grad():
        base = model(x)
        inject_adapter_in_model(StyleInjectConfig(r=2, num_styles=2, target_modules=["lin0", "lin1"]), model)
        for p in params_of(model).values():
            p.data = p.data.float()  # the trainer keeps adapter weights in fp32
        out = model(x)
    assert out.dtype == torch.bfloat16 and torch.equal(out, base)


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(r=0), r"r must be a positive integer .* got 0"),
        (dict(num_styles=2.0), r"num_styles must be a positive integer .* got 2\.0"),
        (dict(alpha=float("nan")), r"alpha must be a finite number .* got nan"),
        (dict(alpha=-1), r"alpha must be > 0 .* got -1"),
        (dict(target_modules=None), r"target_modules must name the modules to adapt, .* got None"),
        (dict(use_dma=False, num_styles=4), r"use_dma=False .* num_styles must be 1, got num_styles=4"),
        (dict(use_dma=False, use_sta=False, num_styles=1), r"leave a plain LoRA; set one of them to True"),
        (dict(sta_eps=0.0), r"sta_eps must be a number > 0 .* got 0\.0"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StyleInjectConfig(**{"target_modules": ["to_q"], **kwargs})


def test_config_is_a_registered_peft_config_that_round_trips_through_a_dict() -> None:
    config = StyleInjectConfig(r=8, num_styles=3, alpha=4.0, target_modules=["to_q", "to_v"], use_sta=False)
    assert config.peft_type is PeftType.STYLEINJECT and PeftType("STYLEINJECT") is PeftType.STYLEINJECT
    assert isinstance(config, PeftConfig) and config.scaling == 0.5
    again = get_peft_config(config.to_dict())
    # (PEFT's class may come from another import of this package, the first one registered: compare by name.)
    assert again.to_dict() == config.to_dict() and type(again).__qualname__ == "StyleInjectConfig"
    header = json.loads(json.dumps(config.to_json_dict()))  # as an expert file's header keeps it
    assert header["target_modules"] == ["to_q", "to_v"] and header["peft_type"] == "STYLEINJECT"
    assert StyleInjectConfig(**header).to_dict() == config.to_dict()


def test_unsupported_modules_are_refused_with_a_hint() -> None:
    model = nn.Sequential(nn.Embedding(10, 4), nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(TypeError, match=r"adapts nn.Linear and nn.Conv2d modules; 0 is a Embedding\. Narrow"):
        inject_adapter_in_model(StyleInjectConfig(target_modules=["0"]), model)
    with pytest.raises(ValueError, match=r"groups=1 only, got groups=2"):
        inject_adapter_in_model(StyleInjectConfig(target_modules=["1"]), model)


def test_merging_is_refused() -> None:
    model = TEST_CASES[1].adapted()
    with pytest.raises(ValueError, match="cannot be merged into the base weights"):
        model.lin0.merge()


def test_loading_refuses_weights_of_another_config() -> None:
    saved = style_inject_state_dict(TEST_CASES[1].adapted())  # n=4, r=3 on lin0 and lin1
    with pytest.raises(ValueError, match=r"has no StyleInject adapter named 'other' \(it has \['default'\]\)"):
        load_style_inject_state_dict(TEST_CASES[1].adapted(), saved, adapter_name="other")
    with pytest.raises(ValueError, match=r"missing lin1\.styleinject_down, .*Inject the adapter with the config"):
        load_style_inject_state_dict(TEST_CASES[1].adapted(), {k: v for k, v in saved.items() if "lin1" not in k})
    with pytest.raises(ValueError, match=r"lin0\.styleinject_down: saved \(4, 3, 10\), model \(2, 3, 10\)"):
        load_style_inject_state_dict(TEST_CASES[1].adapted(num_styles=2), saved)


@pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute")  # a second adapter, on purpose
def test_record_router_needs_an_adapter_name_when_ambiguous() -> None:
    model = TEST_CASES[1].adapted()
    inject_adapter_in_model(TEST_CASES[1].make_config(), model, adapter_name="second")
    with pytest.raises(
        ValueError, match=r"needs adapter_name .* 2 adapters with a router \(\['default', 'second'\]\)"
    ):
        with record_router(model):
            pass
    with pytest.raises(ValueError, match=r"no StyleInject layers to record"):
        with record_router(MLP()):
            pass
