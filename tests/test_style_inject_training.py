"""Training StyleInject experts (method='styleinject') on the tiny SD pipeline: it learns, resumes exactly, writes a
self-describing file that reproduces the trained adapter bit for bit on a fresh UNet; the config and the CLI."""

from __future__ import annotations

import argparse
import importlib
import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from selma.cli import main
from selma.cli.train import add_arguments, config_from_args
from selma.datasets.files import DatasetWriter, dataset_dir
from selma.experts.style_inject_files import StyleInjectExpert, apply_style_inject_expert, load_style_inject_expert
from selma.experts.style_inject_from_model import style_inject_expert_from_model
from selma.testing.tiny_models import build_tiny_sd
from selma.training import CheckpointMismatch, DiffusersBackend, TrainConfig, train_expert
from selma.training.adapter import ADAPTER_NAME, injected_adapter

COLOURS = {"red": (230, 20, 20), "green": (20, 200, 40), "blue": (30, 40, 220), "yellow": (240, 230, 30)}


def config(**overrides) -> TrainConfig:
    base = dict(method="styleinject", rank=4, alpha=4, num_styles=3, target_modules=("to_q", "to_v"))
    base |= dict(resolution=32, batch_size=2, grad_accum=1, steps=3, save_every=0, learning_rate=1e-3)
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on a shared 2-core machine: two threads oversubscribe it
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def backend() -> DiffusersBackend:
    return DiffusersBackend(build_tiny_sd(), device="cpu")


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data") / "colours"
    writer = DatasetWriter(folder)
    for index, (name, rgb) in enumerate(COLOURS.items()):
        writer.add(Image.new("RGB", (32, 32), rgb), f"a {name} image", index)
    return folder


def unet_inputs() -> tuple:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(2, 4, 16, 16, generator=gen), torch.tensor([10, 500]), torch.randn(2, 77, 32, generator=gen)


class Exporting:
    """The tiny backend, handing the trained adapter back itself (as the ComfyUI backend does) and recording the
    UNet's output with the trained adapter still in place."""

    def __init__(self, inner: DiffusersBackend) -> None:
        self.inner, self.module, self.device = inner, inner.module, inner.device

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def export_style_inject(self, adapter_name: str) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            self.output = self.module(*unet_inputs()).sample
        return style_inject_expert_from_model(self.module, adapter_name).tensors


def initial_expert(backend, cfg: TrainConfig) -> StyleInjectExpert:
    with injected_adapter(backend.module, cfg):
        return style_inject_expert_from_model(backend.module, ADAPTER_NAME)


@pytest.fixture(scope="module")
def straight(backend, colours, tmp_path_factory):
    """4 uninterrupted steps with grad_accum 2, through the exporting backend: the reference."""
    cfg = config(steps=4, grad_accum=2)
    exporting = Exporting(backend)
    result = train_expert(exporting, colours, tmp_path_factory.mktemp("straight"), cfg, skill="colours")
    return result, exporting.output, cfg


def max_difference(a: StyleInjectExpert, b: StyleInjectExpert) -> float:
    assert a.tensors.keys() == b.tensors.keys()
    return max((a.tensors[k] - b.tensors[k]).abs().max().item() for k in a.tensors)


def test_a_styleinject_expert_trains_every_parameter(backend, straight):
    result, _, cfg = straight
    records = [json.loads(line) for line in result.log_path.read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in records)
    before, after = initial_expert(backend, cfg), result.expert
    assert before.tensors.keys() == after.tensors.keys() and len(after.module_names) == 24
    assert all(not torch.equal(before.tensors[k], after.tensors[k]) for k in after.tensors)
    assert all(after.tensors[k].abs().sum() > 0 for k in after.tensors if "up" in k or "hyper" in k)  # off zero


def test_the_seed_decides_the_init_and_gaussian_draws_the_down_projections(backend):
    a, b = initial_expert(backend, config()), initial_expert(backend, config())
    assert all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
    kaiming = initial_expert(backend, config(init="kaiming"))
    down = f"{a.module_names[0]}.styleinject_down"
    assert not torch.equal(a.tensors[down], kaiming.tensors[down])
    assert a.tensors[down].std().item() == pytest.approx(1 / 4, rel=0.2)  # N(0, 1/r) with r = 4
    assert not any(torch.equal(a.tensors[k], initial_expert(backend, config(seed=1)).tensors[k]) for k in [down])


def test_the_file_reproduces_the_trained_adapter_exactly_on_a_fresh_unet(straight):
    result, trained_output, cfg = straight
    loaded = load_style_inject_expert(result.expert_path)
    assert max_difference(loaded, result.expert) == 0
    assert (loaded.config.r, loaded.config.num_styles, loaded.config.alpha) == (4, 3, 4)
    assert loaded.metadata["skill"] == "colours" and loaded.metadata["steps"] == 4
    assert loaded.metadata["method"] == "styleinject" and loaded.metadata["init_seed"] == cfg.seed
    assert TrainConfig.from_json(loaded.metadata["config"]) == cfg
    fresh = apply_style_inject_expert(build_tiny_sd(seed=0).unet, loaded)
    with torch.no_grad():
        assert torch.equal(fresh(*unet_inputs()).sample, trained_output)


def test_the_checkpoint_holds_the_styleinject_parameters(straight):
    result, _, _ = straight
    tensors = load_file(result.work_dir / "checkpoint" / "adapter.safetensors")
    name = result.expert.module_names[0]
    assert torch.equal(tensors[f"{name}.styleinject_down.selma"], result.expert.tensors[f"{name}.styleinject_down"])
    assert torch.equal(
        tensors[f"{name}.styleinject_router.selma.weight"], result.expert.tensors[f"{name}.styleinject_router.weight"]
    )
    assert len(tensors) == len(result.expert.tensors)


def test_resume_equals_uninterrupted(backend, colours, straight, tmp_path):
    reference, _, cfg = straight
    first = train_expert(backend, colours, tmp_path, config(**{**cfg.to_json(), "steps": 2}), skill="colours")
    assert first.steps == 2 and isinstance(first.expert, StyleInjectExpert)
    resumed = train_expert(backend, colours, tmp_path, cfg, skill="colours")
    assert resumed.resumed_from == 2 and resumed.steps == 4
    assert max_difference(resumed.expert, reference.expert) == 0  # the same numbers, bit for bit
    again = train_expert(backend, colours, tmp_path, cfg, skill="colours")  # finished: read back from the file
    assert again.steps == 4 and max_difference(again.expert, resumed.expert) == 0
    with pytest.raises(CheckpointMismatch, match=r"trained with num_styles=3 \(now 2\)"):
        train_expert(backend, colours, tmp_path, config(**{**cfg.to_json(), "num_styles": 2}), skill="colours")


def test_training_leaves_no_adapter_behind(backend, colours, tmp_path):
    from peft.tuners.tuners_utils import BaseTunerLayer

    before = [n for n, _ in backend.unet.named_parameters()]
    train_expert(backend, colours, tmp_path, config(steps=1, use_sta=False), skill="colours")
    assert not any(isinstance(m, BaseTunerLayer) for m in backend.unet.modules())
    assert [n for n, _ in backend.unet.named_parameters()] == before and not hasattr(backend.unet, "peft_config")


# ------------------------------------------------------------------------------------------ the config


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(method="dora"), r"method='dora' is not supported; use one of \('lora', 'styleinject'\)"),
        (dict(num_styles=0), r"num_styles=0 must be an integer >= 1"),
        (dict(use_dma="yes"), r"use_dma='yes' must be True or False"),
        (dict(method="lora", num_styles=8), r"num_styles=8 applies to method='styleinject' only"),
        (dict(use_dma=False), r"use_dma=False \(the paper's 'STA alone'\) keeps one down-projection"),
        (dict(use_dma=False, use_sta=False, num_styles=1), r"leaves a plain LoRA"),
    ],
)
def test_the_config_refuses_what_would_not_train(overrides, match):
    with pytest.raises(ValueError, match=match):
        config(**overrides)


def test_styleinject_fields_keep_their_defaults_for_lora_and_old_configs_still_load():
    assert TrainConfig().num_styles == 4 and TrainConfig().use_dma and TrainConfig().use_sta
    old = {k: v for k, v in TrainConfig().to_json().items() if k not in ("num_styles", "use_dma", "use_sta")}
    assert TrainConfig.from_json(old) == TrainConfig()


# ------------------------------------------------------------------------------------------ the CLI


def parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--run-dir", "r", "--model", "m", "--skill", "s", *argv])


def test_cli_flags_map_to_the_config():
    cfg = config_from_args(parsed("--method", "styleinject", "--num-styles", "16", "--dma-only"))
    assert (cfg.method, cfg.num_styles, cfg.use_dma, cfg.use_sta) == ("styleinject", 16, True, False)
    cfg = config_from_args(parsed("--method", "styleinject", "--sta-only"))
    assert (cfg.num_styles, cfg.use_dma, cfg.use_sta) == (1, False, True)
    with pytest.raises(SystemExit):
        parsed("--dma-only", "--sta-only")


def test_cli_refuses_contradicting_flags_before_loading_anything(tmp_path, capsys):
    code = main(
        ["train", "--run-dir", str(tmp_path), "--model", str(tmp_path / "none"), "--skill", "s"]
        + ["--method", "styleinject", "--sta-only", "--num-styles", "4"]
    )
    assert code == 2 and "so num_styles must be 1, got num_styles=4" in capsys.readouterr().err


def test_cli_trains_a_dma_only_expert(tmp_path, capsys):
    build_tiny_sd(tmp_path / "model")
    writer = DatasetWriter(dataset_dir(tmp_path / "run", "colours"))
    for index, (name, rgb) in enumerate(COLOURS.items()):
        writer.add(Image.new("RGB", (32, 32), rgb), f"a {name} image", index)
    args = ["train", "--run-dir", str(tmp_path / "run"), "--model", str(tmp_path / "model"), "--skill", "colours"]
    args += ["--method", "styleinject", "--num-styles", "2", "--dma-only", "--rank", "2", "--alpha", "2"]
    args += [
        "--target-modules",
        "to_v",
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--grad-accum",
        "1",
        "--resolution",
        "32",
    ]
    assert main(args) == 0
    expert = load_style_inject_expert(tmp_path / "run" / "experts" / "colours.safetensors")
    assert (expert.config.num_styles, expert.config.use_sta) == (2, False)
    assert not any("hyper" in key for key in expert.tensors) and len(expert.module_names) == 12
    assert "colours: 1/1 steps" in capsys.readouterr().out


def test_the_comfyui_backend_exports_styleinject_tensors_over_diffusers_names(node_package):
    from peft import inject_adapter_in_model
    from torch import nn

    from selma.tuners.style_inject import StyleInjectConfig

    def tree(path: list[str], leaf: nn.Module) -> nn.Module:
        return leaf if not path else nn.ModuleDict({path[0]: tree(path[1:], leaf)})

    ldm_name = "input_blocks.1.1.transformer_blocks.0.attn1.to_q"  # = down_blocks.0.attentions.0...attn1.to_q
    diffusion_model = tree(ldm_name.split("."), nn.Linear(32, 32))
    inject_adapter_in_model(StyleInjectConfig(r=2, num_styles=2, target_modules=["to_q"]), diffusion_model, "selma")
    comfy_backend = importlib.import_module(f"{node_package.__name__}.nodes.glue.training_backend")
    backend = comfy_backend.ComfyBackend.__new__(comfy_backend.ComfyBackend)  # no ComfyUI here: set what export uses
    layout = importlib.import_module(f"{node_package.__name__}.selma.models.unet_names").UnetLayout  # ComfyUI's copy
    backend.module, backend._layout = diffusion_model, layout.from_config(build_tiny_sd().unet.config)
    tensors = backend.export_style_inject("selma")
    name = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    assert set(tensors) == {f"{name}.{part}" for part in ("styleinject_down", "styleinject_up")} | {
        f"{name}.styleinject_{module}.{p}" for module in ("router", "hyper") for p in ("weight", "bias")
    }
    assert tensors[f"{name}.styleinject_down"].shape == (2, 2, 32)
