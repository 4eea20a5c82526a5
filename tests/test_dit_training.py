"""FLUX.1 and SD3 through the headless stages on tiny random models of the real diffusers classes: the flow-matching
objective against diffusers' own, train -> save -> load (ours and diffusers' load_lora_weights) -> merge, resume."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from safetensors import safe_open

from selma.datasets.files import DatasetWriter
from selma.experts.lora_files import apply_lora_expert, load_lora_expert, save_lora_expert
from selma.merging import MergeConfig, merge_lora_experts
from selma.testing.tiny_dit import build_tiny_flux, build_tiny_sd3
from selma.training import TrainConfig, train_expert
from selma.training.diffusers_backend import load_diffusers_backend
from selma.training.dit_backend import FlowMatchingBackend
from selma.training.flow_matching import FlowTimesteps, flow_noisy, sample_flow_timesteps, scheduler_timesteps

BUILDERS = {"flux": build_tiny_flux, "sd3": build_tiny_sd3}
COLOURS = {"red": (230, 20, 20), "green": (20, 200, 40), "blue": (30, 40, 220), "yellow": (240, 230, 30)}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def config(**overrides) -> TrainConfig:
    base = {"rank": 4, "alpha": 8, "resolution": 32, "batch_size": 2, "grad_accum": 1, "steps": 4}
    return TrainConfig(**{**base, "save_every": 0, "learning_rate": 1e-3, **overrides})


def backend_of(family: str, **kwargs) -> FlowMatchingBackend:
    return FlowMatchingBackend(BUILDERS[family](), max_sequence_length=16, **kwargs)


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data") / "colours"
    writer = DatasetWriter(folder)
    for index, (name, rgb) in enumerate(COLOURS.items()):
        writer.add(Image.new("RGB", (32, 32), rgb), f"a {name} image", index)
    return folder


@pytest.fixture(scope="module", params=["flux", "sd3"])
def trained(request, colours, tmp_path_factory):
    """(family, backend, result) of 6 uninterrupted steps (grad_accum 2): the reference of the resume test."""
    backend = backend_of(request.param)
    out = tmp_path_factory.mktemp(f"run-{request.param}")
    result = train_expert(backend, colours, out, config(steps=6, grad_accum=2), skill="colours")
    return request.param, backend, result


def probe(backend: FlowMatchingBackend, conditioning) -> torch.Tensor:
    generator = torch.Generator().manual_seed(5)
    noisy = torch.randn(1, 4, 16, 16, generator=generator)
    with torch.no_grad():
        return backend.predict(noisy, torch.tensor([600.0]), conditioning)


def dense_reference(family: str, expert) -> torch.nn.Module:
    """A fresh transformer with W += ΔW for every module of the expert: the update computed independently."""
    transformer = BUILDERS[family]().transformer
    modules = dict(transformer.named_modules())
    with torch.no_grad():
        for name, module in expert.modules.items():
            modules[name].weight += module.delta().reshape(modules[name].weight.shape)
    return transformer


# ------------------------------------------------------------------ the objective


def test_timesteps_are_drawn_as_diffusers_training_scripts_draw_them():
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.training_utils import compute_density_for_timestep_sampling

    for family, scheduler_config in (("sd3", {"shift": 3.0}), ("flux", {"shift": 3.0, "use_dynamic_shifting": True})):
        scheduler = FlowMatchEulerDiscreteScheduler(**scheduler_config)
        for scheme in ("logit_normal", "mode", "uniform"):
            draw = FlowTimesteps(weighting_scheme=scheme)
            ours = sample_flow_timesteps(
                scheduler_timesteps(scheduler.config), 64, torch.Generator().manual_seed(3), draw
            )
            u = compute_density_for_timestep_sampling(
                scheme, 64, logit_mean=0.0, logit_std=1.0, mode_scale=1.29, generator=torch.Generator().manual_seed(3)
            )
            theirs = scheduler.timesteps[(u * scheduler.config.num_train_timesteps).long()]
            assert torch.equal(ours, theirs.float()), (family, scheme)


def test_noising_matches_the_schedulers_scale_noise_and_the_target_is_the_velocity():
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    backend = backend_of("sd3")
    latents, noise = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    timesteps = scheduler.timesteps[torch.tensor([10, 500, 990])]
    expected = torch.cat(
        [scheduler.scale_noise(latents[i : i + 1], timesteps[i : i + 1], noise[i : i + 1]) for i in range(3)]
    )
    assert torch.allclose(backend.add_noise(latents, noise, timesteps), expected, atol=1e-6)
    assert torch.equal(backend.target(latents, noise, timesteps), noise - latents)
    assert torch.equal(flow_noisy(latents, noise, torch.zeros(3, 1, 1, 1)), latents)


def test_flux_predict_is_the_transformers_output_on_packed_tokens():
    """The same call FluxPipeline makes at one denoising step (packed latents, ids, guidance, t/1000)."""
    backend = backend_of("flux", guidance=3.5)
    pipe = backend.pipeline
    conditioning = backend.encode_prompts(["a red cube"])
    noisy = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    packed = pipe._pack_latents(noisy, 1, 4, 16, 16)
    with torch.no_grad():
        direct = pipe.transformer(
            hidden_states=packed,
            timestep=torch.tensor([0.25]),
            guidance=torch.tensor([3.5]),
            pooled_projections=conditioning["pooled_projections"],
            encoder_hidden_states=conditioning["encoder_hidden_states"],
            txt_ids=torch.zeros(16, 3),
            img_ids=pipe._prepare_latent_image_ids(1, 8, 8, "cpu", torch.float32),
            return_dict=False,
        )[0]
        ours = backend.predict(noisy, torch.tensor([250.0]), conditioning)
    assert torch.allclose(ours, pipe._unpack_latents(direct, 32, 32, backend.vae_scale_factor), atol=1e-6)


def test_a_unet_pipeline_is_refused_with_the_backend_to_use():
    from selma.testing.tiny_models import build_tiny_sd

    with pytest.raises(ValueError, match="UNet models: DiffusersBackend"):
        FlowMatchingBackend(build_tiny_sd())


# ------------------------------------------------------------------ train, save, load


def test_training_logs_every_step(trained):
    family, backend, result = trained
    losses = [json.loads(line)["loss"] for line in result.log_path.read_text().splitlines()]
    assert len(losses) == 6 and torch.isfinite(torch.tensor(losses)).all()


def test_text_encoders_leave_the_gpu_once_captions_are_cached(monkeypatch):
    backend = backend_of("flux")
    backend.device = torch.device("cuda")  # what the trainer sees on a GPU; nothing here runs on one
    moves = []
    monkeypatch.setattr(torch.nn.Module, "to", lambda self, *a, **k: moves.append((type(self).__name__, a)) or self)
    backend.offload_text_encoders()
    assert moves == [("CLIPTextModel", ("cpu",)), ("T5EncoderModel", ("cpu",))]
    keeper = backend_of("flux", keep_text_encoders=True)
    keeper.device = torch.device("cuda")
    moves.clear()
    keeper.offload_text_encoders()
    assert moves == []


def test_the_expert_file_is_diffusers_dit_lora_with_its_family(trained):
    family, _, result = trained
    with safe_open(str(result.expert_path), "pt") as f:
        keys, header = list(f.keys()), f.metadata()
    assert header["selma.family"] == family and header["selma.method"] == "lora"
    assert keys and all(
        k.startswith("transformer.") and k.endswith((".lora_A.weight", ".lora_B.weight")) for k in keys
    )
    assert any(".attn.to_q." in k for k in keys)
    if family == "flux":
        assert any(k.startswith("transformer.single_transformer_blocks.") for k in keys)


def test_the_saved_expert_is_the_trained_update_in_ours_and_in_diffusers(trained, tmp_path):
    family, _, result = trained
    loaded = load_lora_expert(result.expert_path)
    assert loaded.metadata["family"] == family
    for name, module in result.expert.modules.items():
        assert torch.allclose(loaded.modules[name].delta(), module.delta(), atol=1e-7), name

    pipe = BUILDERS[family]()
    reference = FlowMatchingBackend(pipe, max_sequence_length=16, keep_text_encoders=True)
    conditioning = reference.encode_prompts(["a red image"])
    base = probe(reference, conditioning)
    pipe.transformer = dense_reference(family, result.expert)
    reference.transformer = reference.module = pipe.transformer
    expected = probe(reference, conditioning)

    fresh = BUILDERS[family]()
    fresh.load_lora_weights(str(result.expert_path.parent), weight_name=result.expert_path.name)
    via_diffusers = FlowMatchingBackend(fresh, max_sequence_length=16)
    got = probe(via_diffusers, conditioning)
    assert (expected - base).abs().max() > 1e-4  # the expert changes the output
    assert torch.allclose(got, expected, atol=1e-5)

    ours = FlowMatchingBackend(BUILDERS[family](), max_sequence_length=16)
    apply_lora_expert(ours.transformer, loaded)
    assert torch.allclose(probe(ours, conditioning), expected, atol=1e-5)


def test_resume_equals_uninterrupted(trained, colours, tmp_path):
    family, _, reference = trained
    first = train_expert(backend_of(family), colours, tmp_path, config(steps=3, grad_accum=2), skill="colours")
    assert first.steps == 3
    resumed = train_expert(backend_of(family), colours, tmp_path, config(steps=6, grad_accum=2), skill="colours")
    assert resumed.resumed_from == 3 and resumed.steps == 6
    for name, module in reference.expert.modules.items():
        assert torch.allclose(resumed.expert.modules[name].delta(), module.delta(), atol=1e-6), name


# ------------------------------------------------------------------ merge


@pytest.mark.parametrize("method", ["linear", "svd", "ties"])
def test_dit_experts_merge_and_the_merge_loads_in_diffusers(trained, colours, tmp_path, method):
    family, _, result = trained
    other = train_expert(backend_of(family), colours, tmp_path, config(steps=2, seed=7), skill="other")
    experts = [load_lora_expert(result.expert_path), load_lora_expert(other.expert_path)]
    merged = merge_lora_experts(experts, MergeConfig(method=method, rank=None if method == "linear" else 4))
    assert merged.expert.metadata["family"] == family
    path = save_lora_expert(tmp_path / "merged.safetensors", merged.expert)
    with safe_open(str(path), "pt") as f:
        assert f.metadata()["selma.family"] == family
    fresh = BUILDERS[family]()
    fresh.load_lora_weights(str(tmp_path), weight_name="merged.safetensors")
    assert fresh.get_active_adapters()


def test_experts_of_different_families_refuse_to_merge(trained, tmp_path):
    from selma.testing.tiny_models import build_tiny_sd

    family, _, result = trained
    unet_expert = train_expert(
        load_diffusers_backend(build_tiny_sd()), _one_image(tmp_path), tmp_path / "sd", config(steps=1), skill="sd"
    )
    with pytest.raises(ValueError, match=rf"different model families \(.*{family}.*UNet"):
        merge_lora_experts([load_lora_expert(result.expert_path), unet_expert.expert], MergeConfig(method="linear"))


def _one_image(tmp_path):
    folder = tmp_path / "one"
    writer = DatasetWriter(folder)
    writer.add(Image.new("RGB", (32, 32), (200, 10, 10)), "a red image", 0)
    return folder


# ------------------------------------------------------------------ loading


def test_a_flux_folder_loads_as_the_flow_matching_backend(tmp_path):
    build_tiny_flux(tmp_path / "flux")
    backend = load_diffusers_backend(tmp_path / "flux")
    assert isinstance(backend, FlowMatchingBackend) and backend.family == "flux"
    assert backend.transformer.config.guidance_embeds


# ------------------------------------------------------------------ every stage: `selma run`

DIT_RUN = """
run_dir = "run"
skills = ["shapes_counting", "shapes_spatial"]
[llm]
backend = "template"
[prompts]
count = 4
[images]
model = "{model}"
batch_size = 2
steps = 2
width = 32
height = 32
[train]
rank = 4
alpha = 4
resolution = 32
batch_size = 2
grad_accum = 1
steps = 2
[merge]
method = "svd"
rank = 4
[evaluate]
enabled = true
answerer = {{backend = "programmatic", model = "shapes"}}
metrics = ["dsg", "vqascore"]
prompts = 2
steps = 2
resolution = 32
[compare]
prompts = 1
steps = 2
resolution = 32
"""


@pytest.mark.parametrize("family", ["flux", "sd3"])
def test_selma_run_goes_through_every_stage_on_a_dit_model(family, tmp_path, capsys):
    from selma.cli import main

    BUILDERS[family](tmp_path / "model")
    (tmp_path / "run.toml").write_text(DIT_RUN.format(model=tmp_path / "model"))
    assert main(["run", str(tmp_path / "run.toml")]) == 0
    run = tmp_path / "run"
    for skill in ("shapes_counting", "shapes_spatial"):
        assert len((run / "datasets" / skill / "metadata.jsonl").read_text().splitlines()) == 4
        assert load_lora_expert(run / "experts" / f"{skill}.safetensors").metadata["family"] == family
        with Image.open(run / "comparison" / f"{skill}.png") as grid:
            assert grid.width == 6 + 4 * 166, "columns: base, counting, spatial, merged"
    assert load_lora_expert(run / "experts" / "merged.safetensors").metadata["family"] == family
    scoreboard = json.loads((run / "evaluation" / "scoreboard.json").read_text())
    variants = {(row["skill"], row["variant"], row["metric"]) for row in scoreboard["rows"]}
    expected = {"base", "shapes_counting", "shapes_spatial", "merged"}
    for skill in ("shapes_counting", "shapes_spatial"):
        for metric in ("dsg", "vqascore"):
            assert {v for s, v, m in variants if (s, m) == (skill, metric)} == expected


# ------------------------------------------------------------------ StyleInject and router inspection on DiT blocks


@pytest.mark.parametrize("family", ["flux", "sd3"])
def test_styleinject_trains_saves_loads_and_is_inspected_on_dit_blocks(family, colours, tmp_path):
    from selma.experts.style_inject_files import apply_style_inject_expert, load_style_inject_expert
    from selma.inspection.router_plots import heatmap
    from selma.inspection.router_report import RouterReport, inspect_router

    config = TrainConfig(
        method="styleinject", rank=4, alpha=4, num_styles=3, resolution=32, batch_size=2, grad_accum=1, steps=3,
        save_every=0, learning_rate=1e-2,
    )  # fmt: skip
    result = train_expert(backend_of(family), colours, tmp_path, config, skill="styles")
    expert = load_style_inject_expert(result.expert_path)
    assert expert.metadata["family"] == family
    assert any(name.startswith("transformer_blocks.0.attn") for name in expert.module_names)

    pipe = BUILDERS[family]()
    apply_style_inject_expert(pipe.transformer, expert)
    report = inspect_router(pipe, ["a red image", "a blue image"], steps=2, guidance=4.0, seed=0, height=32, width=32)
    # FLUX.1-dev is guidance-distilled: one pass per step, no unconditional branch; SD3 samples with CFG
    assert report.branches == (("cond",) if family == "flux" else ("cond", "uncond"))
    assert report.probabilities.shape[:4] == (2, 2, len(report.branches), len(expert.module_names))
    assert torch.allclose(report.grouped().sum(-1), torch.ones(()), atol=1e-5)
    assert all(layer in expert.module_names for layer in report.layers)
    again = RouterReport.from_json(json.loads(json.dumps(report.to_json())))
    assert again.branches == report.branches and torch.equal(again.probabilities, report.probabilities)
    assert heatmap(report, prompt_index=1, branch="cond").size[0] > 0
    if family == "flux":
        with pytest.raises(ValueError, match="not one of this report's"):
            report.branch("uncond")
